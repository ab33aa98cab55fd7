// Found by the fault suite (test/chaos): a worker whose etcd connection was cut for longer than
// its lease, then healed, rejoined fine but lingered for ~17 s after SIGTERM, past any sane
// termination grace. The etcd3 package re-establishes a broken watch stream after an
// exponential back-off of up to 30 s, on a timer that close() does not clear; createEtcdClient
// now takes hearth's etcd retry policy for it (capped by retry.maxDelayMs), so a watch resumes soon after a partition
// heals and a stopped process exits at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import type { HearthProcess } from '../../support/hearth-process.js';
import { memberEnv, startWorker } from '../../support/orphans-cluster.js';
import { TcpProxy } from '../../support/tcp-proxy.js';
import { waitFor } from '../../support/wait.js';

const SHUTDOWN_GRACE_MS = 5_000;

describe('a worker cut off etcd past its lease, then healed', () => {
  let etcd: EtcdTestContext;
  let amqp: AmqpTestContext;
  let proxy: TcpProxy;
  let worker: HearthProcess | undefined;

  beforeAll(async () => {
    etcd = useEtcd();
    amqp = await useAmqp();
    proxy = await TcpProxy.start({ port: Number(new URL(etcd.endpoints[0] ?? '').port) });
  });
  afterAll(async () => {
    if (worker?.process.alive) worker.process.killNow();
    await proxy?.close();
    await etcd?.close();
    await amqp?.close();
  });

  it('rejoins, and on SIGTERM exits 0 within its shutdown grace (no watch re-establish timer keeps it alive)', async () => {
    const env = memberEnv({ ...etcd, endpoints: [proxy.url] }, amqp, 'ps', '', { HEARTH_DRIVER_FAKE_JOURNAL: '', HEARTH_SHUTDOWN_GRACE_MS: String(SHUTDOWN_GRACE_MS), HEARTH_ETCD_CALL_TIMEOUT_MS: '1000' });
    const w = await startWorker(env, 'ps1');
    worker = w;
    const rejoinsBefore = w.logs().filter((l) => l.msg === 'joined the cluster').length;
    // Long enough for the package's back-off to grow to many seconds: every reconnect is refused.
    proxy.cut();
    await new Promise((r) => setTimeout(r, 12_000));
    proxy.heal();
    await waitFor(() => w.logs().filter((l) => l.msg === 'joined the cluster').length > rejoinsBefore, { timeoutMs: 30_000, what: 'a new incarnation' });
    await waitFor(async () => (await fetch(`${w.opsUrl}/readyz`)).status === 200, { timeoutMs: 30_000, what: 'ready again' });
    const asked = Date.now();
    const exit = await w.stop(SHUTDOWN_GRACE_MS + 10_000);
    const tookMs = Date.now() - asked;
    console.log(`[membership] after a 12 s etcd cut and a rejoin, SIGTERM → exit in ${tookMs} ms (watch back-off capped by retry.maxDelayMs)`);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(tookMs).toBeLessThan(SHUTDOWN_GRACE_MS);
  });
});
