import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { waitFor } from '../../support/wait.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../../..');

describe('hearth serve on the embedded single-node defaults', () => {
  let hearth: HearthProcess;
  beforeAll(async () => {
    hearth = await startHearth({ name: 'single' });
  });
  afterAll(() => hearth.stop());

  it('serves the version document at / (300) and /v3/ (200) in Cinder\'s shape', async () => {
    const root = await fetch(`${hearth.apiUrl}/`);
    expect(root.status).toBe(300);
    const doc = (await root.json()) as { versions: { id: string; version: string; min_version: string; links: { rel: string; href: string }[] }[] };
    expect(doc.versions[0]).toMatchObject({ id: 'v3.0', status: 'CURRENT', min_version: '3.0', version: '3.70' });
    expect(doc.versions[0]?.links.find((l) => l.rel === 'self')?.href).toBe(`${hearth.apiUrl}/v3/`);
    const v3 = await fetch(`${hearth.apiUrl}/v3/`);
    expect(v3.status).toBe(200);
  });

  it('answers unknown paths with Cinder\'s fault body and negotiates microversions', async () => {
    const res = await fetch(`${hearth.apiUrl}/v3/admin/nothing-here`, { headers: { 'OpenStack-API-Version': 'volume 3.26' } });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ itemNotFound: { code: 404 } });
    const bad = await fetch(`${hearth.apiUrl}/v3/admin/nothing-here`, { headers: { 'OpenStack-API-Version': 'volume 9.0' } });
    expect(bad.status).toBe(406);
  });

  it('serves hearth_build_info at /metrics and passes its probes', async () => {
    const metrics = await (await fetch(`${hearth.opsUrl}/metrics`)).text();
    expect(metrics).toMatch(/^hearth_build_info\{version="[^"]+",revision="[^"]+",nodejs_version="v\d+/m);
    expect(metrics).toContain('process_resident_memory_bytes');
    expect((await fetch(`${hearth.opsUrl}/livez`)).status).toBe(200);
    expect((await fetch(`${hearth.opsUrl}/readyz`)).status).toBe(200);
  });
});

describe('hearth serve lifecycle', () => {
  it('exits 0 on SIGTERM after a logged, ordered shutdown', async () => {
    const hearth = await startHearth({ name: 'sigterm' });
    const exit = await hearth.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    const messages = hearth.logs().map((l) => l.msg);
    expect(messages).toContain('shutting down');
    expect(messages.indexOf('hearth stopped')).toBeGreaterThan(messages.indexOf('shutting down'));
  });

  it('exits 0 on SIGINT too', async () => {
    const hearth = await startHearth({ name: 'sigint' });
    hearth.process.signal('SIGINT');
    expect(await hearth.process.waitForExit()).toEqual({ code: 0, signal: null });
  });

  it('once ready, logs one line with the API and metrics URLs and the next command to try (JSON: stdout is not a terminal)', async () => {
    const hearth = await startHearth({ name: 'ready-line' });
    try {
      const line = await waitFor(() => hearth.logs().find((l) => typeof l.msg === 'string' && l.msg.startsWith('ready:')), { timeoutMs: 15_000 });
      expect(line).toMatchObject({ api: hearth.apiUrl, metrics: `${hearth.opsUrl}/metrics`, next: 'hearth volume create 1 && hearth volume list' });
      expect(line.msg).toBe(`ready: API ${hearth.apiUrl}, metrics ${hearth.opsUrl}/metrics; try: hearth volume create 1 && hearth volume list`);
    } finally {
      await hearth.stop();
    }
  });

  it('writes pino-pretty lines with log.format pretty, even to a pipe', async () => {
    const hearth = await startHearth({ name: 'pretty', env: { HEARTH_LOG_FORMAT: 'pretty', HEARTH_LOG_LEVEL: 'info' } });
    try {
      await waitFor(() => hearth.output().includes('ready: API'), { timeoutMs: 15_000 });
      const lines = hearth.output().split('\n').filter((l) => l.trim() !== '' && !l.startsWith(' '));
      expect(lines.length).toBeGreaterThan(3);
      for (const l of lines) expect(l).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] (INFO|WARN|ERROR|DEBUG): /);
      expect(hearth.output()).toContain(`INFO: ready: API ${hearth.apiUrl}, metrics ${hearth.opsUrl}/metrics; try: hearth volume create 1`);
    } finally {
      expect(await hearth.stop()).toEqual({ code: 0, signal: null });
    }
  });

  it('exits 2 and names the option when an option is bad', async () => {
    const err = (await run(process.execPath, ['--import', 'tsx', join(REPO, 'test/support/hearth-main.ts'), 'serve'], {
      cwd: REPO,
      env: { PATH: process.env.PATH, HEARTH_LEASE_TTL_MS: 'abc' },
    }).catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err.code).toBe(2);
    expect(err.stderr).toContain('leaseTtlMs (HEARTH_LEASE_TTL_MS)');
  });
});
