// Where the CPU time of a profiled e2e run went: reads the `.cpuprofile` files and window.json
// that `BENCH_CPU_PROF=<dir>` leaves in <dir> (see suites/e2e.ts), keeps the samples taken
// during the measurement, and prints, per process, the CPU time per completed operation by
// where it was spent (a package under node_modules, a concern of src/, Node's own modules, the
// garbage collector) and the functions that took most of it, as Markdown.
// Usage: node --import tsx test/bench/profile-summary.ts <dir> [top functions, default 12]
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  /** Microseconds, on the process's monotonic clock. */
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

interface Window {
  readonly fromEpochMs: number;
  readonly toEpochMs: number;
  readonly stoppedAtEpochMs: number;
  readonly ops: number;
}

/** Where a frame's code lives, coarsely: what the tables group by. */
export function categoryOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'V8 / native (program)';
    // protobufjs generates its codecs with `new Function`: they have no file.
    if (/\$(encode|decode|fromObject|toObject|verify)$/.test(functionName) || /^[A-Z][A-Za-z]+(Request|Response|Op|Value|Header|Compare|Event)$/.test(functionName)) return 'protobufjs';
    if (functionName.startsWith('RegExp:')) return 'regular expressions';
    return 'native (socket writes, buffers, microtasks)';
  }
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + 'node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  const src = url.lastIndexOf('/src/');
  if (src >= 0 && !url.includes('/test/')) {
    const parts = url.slice(src + 5).split('/');
    return `hearth ${parts.length > 1 ? `${parts[0]}/` : parts[0]}`;
  }
  if (url.startsWith('node:')) {
    const name = url.slice(5).replace(/^internal\//, '');
    return `node:${name.split('/')[0]}`;
  }
  return url.includes('/test/') ? 'test support' : 'other';
}

/** Self time (µs) per node id, of the samples between two offsets (µs) from the profile's start. */
function selfTimes(profile: CpuProfile, fromUs: number, toUs: number): Map<number, number> {
  const times = new Map<number, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    const offset = t - profile.startTime;
    if (offset < fromUs || offset > toUs) continue;
    const id = profile.samples[i] as number;
    times.set(id, (times.get(id) ?? 0) + delta);
  }
  return times;
}

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

async function summarize(dir: string, top: number): Promise<void> {
  const window = JSON.parse(await readFile(join(dir, 'window.json'), 'utf8')) as Window;
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).sort();
  console.log(`Measured window: ${((window.toEpochMs - window.fromEpochMs) / 1_000).toFixed(1)} s, ${window.ops} operations.\n`);
  for (const file of files) {
    const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
    // The profile ends at the process's exit: count the window back from there.
    const lengthUs = profile.endTime - profile.startTime;
    const fromUs = lengthUs - (window.stoppedAtEpochMs - window.fromEpochMs) * 1_000;
    const toUs = lengthUs - (window.stoppedAtEpochMs - window.toEpochMs) * 1_000;
    const times = selfTimes(profile, fromUs, toUs);
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const byCategory = new Map<string, number>();
    const byFunction = new Map<string, number>();
    let busy = 0;
    for (const [id, us] of times) {
      const frame = (byId.get(id) as ProfileNode).callFrame;
      const category = categoryOf(frame);
      if (category === 'idle') continue;
      busy += us;
      byCategory.set(category, (byCategory.get(category) ?? 0) + us);
      const where = frame.url === '' ? '' : ` (${frame.url.replace(/^.*node_modules\//, '').replace(/^.*\/src\//, 'src/').replace(/^file:\/\//, '')}:${frame.lineNumber + 1})`;
      const fn = `${frame.functionName || '(anonymous)'}${where}`;
      byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    }
    const perOp = (us: number): string => (us / 1_000 / window.ops).toFixed(3);
    const share = (us: number): string => `${((us / busy) * 100).toFixed(1)} %`;
    const windowS = (toUs - fromUs) / 1e6;
    console.log(`### ${file.replace('.cpuprofile', '')}: ${perOp(busy)} ms of CPU per operation (${((busy / 1e6 / windowS) * 100).toFixed(0)} % of a core)\n`);
    const sorted = [...byCategory].sort((a, b) => b[1] - a[1]);
    const shown = sorted.slice(0, top);
    const rest = sorted.slice(top).reduce((a, [, us]) => a + us, 0);
    const categories = rest > 0 ? [...shown, [`the rest (${sorted.length - top} more)`, rest] as [string, number]] : shown;
    console.log(table(['where', 'ms per op', 'share'], categories.map(([c, us]) => [c, perOp(us), share(us)])));
    console.log('');
    const functions = [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top);
    console.log(table(['function (self time)', 'ms per op', 'share'], functions.map(([f, us]) => [f.replaceAll('|', '\\|'), perOp(us), share(us)])));
    console.log('');
  }
}

const [dir, top] = process.argv.slice(2);
if (!dir) {
  console.error('usage: profile-summary.ts <dir> [top]');
  process.exitCode = 2;
} else {
  await summarize(dir, Number(top ?? 12));
}
