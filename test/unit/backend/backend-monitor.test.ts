import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type BackendChange, BackendMonitor } from '../../../src/backend/backend-monitor.js';
import { BackendMetrics } from '../../../src/backend/metrics.js';
import { FakeVolumeDriver } from '../../../src/drivers/fake-volume-driver.js';
import { ManualClock } from '../../../src/lifecycle/clock.js';
import type { BackendReport } from '../../../src/membership/backend-report.js';
import type { Member } from '../../../src/membership/membership.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { Health } from '../../../src/ops/health.js';
import { OpsServer } from '../../../src/ops/ops-server.js';

/** A member that records the reports it was given. */
function recordingMember(): { member: Member; reports: BackendReport[] } {
  const reports: BackendReport[] = [];
  const member = {
    joined: true,
    reportBackend: async (r: BackendReport) => {
      reports.push(r);
      return { ok: true as const, atMs: 0 };
    },
  } as unknown as Member;
  return { member, reports };
}

describe('backend monitor', () => {
  let dir: string;
  let downFile: string;
  let driver: FakeVolumeDriver;
  let clock: ManualClock;
  let registry: Registry;
  let monitor: BackendMonitor;
  let member: ReturnType<typeof recordingMember>;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-backend-monitor-'));
    downFile = join(dir, 'down');
    driver = await FakeVolumeDriver.open({ downFile, capacityGiB: 10 });
    clock = new ManualClock(1_000);
    registry = new Registry();
    member = recordingMember();
    monitor = new BackendMonitor({ driver, member: () => member.member, intervalMs: 1_000, clock, logger: silentLogger(), metrics: new BackendMetrics(registry, 'c@be', 0.9) });
  });
  afterEach(async () => {
    await monitor.close();
    await driver.close();
    await rm(dir, { recursive: true, force: true });
  });

  const metric = async (name: string): Promise<string> => (await registry.getSingleMetricAsString(name)).split('\n').filter((l) => !l.startsWith('#')).join('\n');

  it('checks before start returns, reports down at once when a check fails, and up again when it passes', async () => {
    const changes: BackendChange[] = [];
    monitor.onChange((c) => changes.push(c));
    expect(monitor.state).toBe('unknown');
    await monitor.start();
    expect(monitor.up).toBe(true);
    expect(member.reports).toHaveLength(1);
    expect(member.reports[0]).toMatchObject({ state: 'up', reason: null, pool: { totalBytes: 10 * 1024 ** 3, driver: 'fake' } });
    expect(await metric('hearth_backend_up')).toBe('hearth_backend_up{cluster="c@be"} 1');

    await writeFile(downFile, 'share unmounted\n');
    await clock.advance(1_000);
    await monitor.check();
    expect(monitor.state).toBe('down');
    expect(monitor.reason).toBe('share unmounted');
    expect(member.reports.at(-1)).toMatchObject({ state: 'down', reason: 'share unmounted' });
    // The pool is kept from the last read that succeeded: an unreadable backend is not an empty one.
    expect(member.reports.at(-1)?.pool?.totalBytes).toBe(10 * 1024 ** 3);
    expect(await metric('hearth_backend_up')).toBe('hearth_backend_up{cluster="c@be"} 0');

    const reportsWhileDown = member.reports.length;
    await clock.advance(1_000);
    await monitor.check();
    expect(member.reports).toHaveLength(reportsWhileDown);

    await rm(downFile);
    await clock.advance(1_000);
    await monitor.check();
    expect(monitor.up).toBe(true);
    expect(changes.map((c) => `${c.previous}→${c.state}`)).toEqual(['unknown→up', 'up→down', 'down→up']);
    expect(await metric('hearth_backend_checks_total')).toContain('hearth_backend_checks_total{result="down"} 2');
  });

  it('/readyz?verbose shows an informational check without failing readiness', async () => {
    const health = new Health();
    health.addReadiness('worker', () => ({ ok: true }));
    health.addInformational('backend', () => ({ ok: false, detail: 'backend down: marker missing' }));
    const ops = new OpsServer(registry, health, silentLogger());
    const address = await ops.listen('127.0.0.1:0');
    try {
      const res = await fetch(`http://127.0.0.1:${address.port}/readyz?verbose`);
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).toContain('[+]worker ok');
      expect(text).toContain('[-]backend failed (not counted)');
      expect(text).not.toContain('marker missing');
    } finally {
      await ops.close();
    }
  });
});
