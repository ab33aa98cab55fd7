import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { imageAllocatorEnv } from '../../bench/allocator.js';
import { repoPath } from './tools.js';

// No Docker engine here, so the image is not built in tests (`make image` builds it where one
// exists). These checks read deploy/Dockerfile and .dockerignore for what matters.

interface Stage {
  from: string;
  name?: string;
  instructions: { op: string; args: string }[];
}

function stages(text: string): Stage[] {
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const args = new Map<string, string>();
  const result: Stage[] = [];
  for (const line of lines) {
    const [op = '', ...rest] = line.split(/\s+/);
    const value = rest.join(' ');
    if (op === 'ARG' && result.length === 0) {
      const [k, v = ''] = value.split('=');
      args.set(k!, v);
    } else if (op === 'FROM') {
      const [image = '', , name] = value.split(/\s+/);
      result.push({ from: image.replace(/\$\{(\w+)\}/g, (_m, k: string) => args.get(k) ?? ''), ...(name ? { name } : {}), instructions: [] });
    } else {
      result.at(-1)?.instructions.push({ op, args: value });
    }
  }
  return result;
}

/** Whether .dockerignore (a `*` followed by `!path` exceptions) lets `path` into the context. */
function inContext(path: string, ignore: string): boolean {
  const rules = ignore.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  let included = true;
  for (const rule of rules) {
    const negated = rule.startsWith('!');
    const pattern = (negated ? rule.slice(1) : rule).replace(/\/$/, '');
    if (pattern === '*' || path === pattern || path.startsWith(`${pattern}/`)) included = negated;
  }
  return included;
}

describe('deploy/Dockerfile', () => {
  const all = stages(readFileSync(repoPath('deploy/Dockerfile'), 'utf8'));
  const final = all.at(-1)!;
  const build = all[0]!;

  it('builds in one stage and runs from another, both on a Node 20 slim image', () => {
    expect(all.length).toBeGreaterThanOrEqual(2);
    for (const s of all) expect(s.from).toMatch(/^node:20(\.\d+)*-[a-z]+-slim$/);
    const buildRuns = build.instructions.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
    expect(buildRuns).toMatch(/npm ci\b/);
    expect(buildRuns).toMatch(/tsc -p tsconfig\.json/);
    expect(buildRuns).toMatch(/npm prune --omit=dev|npm ci --omit=dev/);
  });

  it('leaves build tools out of the final image, which takes only build output from the build stage', () => {
    const runs = final.instructions.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
    expect(runs).not.toMatch(/apt-get|apk |g\+\+|\bmake\b|python3|npm (ci|install)/);
    for (const copy of final.instructions.filter((i) => i.op === 'COPY')) {
      const fromStage = /--from=(\S+)/.exec(copy.args)?.[1];
      if (fromStage) expect(fromStage).toBe(build.name);
    }
  });

  it('runs as the unprivileged node user, with node as PID 1 in exec form', () => {
    const users = final.instructions.filter((i) => i.op === 'USER');
    expect(users.at(-1)?.args).toBe('node');
    const cmd = final.instructions.filter((i) => i.op === 'CMD').at(-1)?.args;
    expect(JSON.parse(cmd ?? 'null')).toEqual(['node', '--enable-source-maps', 'bin/hearth.js', 'serve']);
    expect(final.instructions.some((i) => i.op === 'ENTRYPOINT')).toBe(false);
  });

  it('preloads jemalloc copied from the build stage, with the MALLOC_CONF the bench runs with', () => {
    const copy = final.instructions.find((i) => i.op === 'COPY' && /libjemalloc\.so\.2/.test(i.args));
    const [, destination] = (copy?.args ?? '').replace(/--from=\S+\s+/, '').split(/\s+/);
    const { preload, mallocConf } = imageAllocatorEnv();
    expect(preload).toBe(destination);
    expect(mallocConf).toMatch(/background_thread:true/);
    const buildRuns = build.instructions.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
    expect(buildRuns).toMatch(/apt-get install[^\n]*\blibjemalloc2\b/);
    expect(buildRuns).toMatch(/libjemalloc\.so\.2 \/app\/lib\//);
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    const ignore = readFileSync(repoPath('.dockerignore'), 'utf8');
    const sources = all
      .flatMap((s) => s.instructions)
      .filter((i) => i.op === 'COPY' && !i.args.includes('--from='))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(3);
    for (const src of sources) {
      const path = src.replace(/\/$/, '');
      expect(existsSync(repoPath(path)), path).toBe(true);
      expect(inContext(path, ignore), `${path} is in the build context`).toBe(true);
    }
    for (const secretish of ['.git', 'node_modules', 'var', 'dist', '.env']) expect(inContext(secretish, ignore), secretish).toBe(false);
  });
});
