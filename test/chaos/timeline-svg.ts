/**
 * Renders the fault run's timeline to SVG with vega's headless renderer (pure JavaScript: no
 * canvas, no browser; text widths are vega's estimate) and writes it beside the run's data.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile } from 'vega-lite';
import { type TimelineRun, timelineSpec } from './timeline.js';

/** The SVG document of `run`'s timeline. */
export async function renderTimelineSvg(run: TimelineRun): Promise<string> {
  const view = new vega.View(vega.parse(compile(timelineSpec(run)).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Where {@link writeTimeline} put a run's files. */
export interface TimelineFiles {
  /** `timeline-<topology>.svg`: the latest run of this topology. */
  readonly latest: string;
  /** `timeline-<topology>-<start, UTC>-seed<seed>.svg`: this run, kept. */
  readonly svg: string;
  /** The run's records beside it (`.json`), to draw again or compute stalls later. */
  readonly data: string;
}

/**
 * Writes `run`'s timeline into `dir` (created if missing): this run's SVG and data, and the
 * topology's "latest" SVG (replaced by a rename, so a reader never sees half a file).
 */
export async function writeTimeline(dir: string, run: TimelineRun): Promise<TimelineFiles> {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(run.topology)) throw new Error(`topology ${JSON.stringify(run.topology)}: lower-case letters, digits and dashes only`);
  await mkdir(dir, { recursive: true });
  const svgText = await renderTimelineSvg(run);
  const stamp = new Date(run.startedAt).toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-');
  const base = join(dir, `timeline-${run.topology}-${stamp}-seed${run.seed}`);
  const files: TimelineFiles = { latest: join(dir, `timeline-${run.topology}.svg`), svg: `${base}.svg`, data: `${base}.json` };
  await writeFile(files.svg, svgText);
  await writeFile(files.data, `${JSON.stringify(run, null, 1)}\n`);
  await writeFile(`${files.latest}.tmp`, svgText);
  await rename(`${files.latest}.tmp`, files.latest);
  return files;
}
