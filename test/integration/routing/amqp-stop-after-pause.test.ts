import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import type { HearthProcess } from '../../support/hearth-process.js';
import { memberEnv, startWorker } from '../../support/orphans-cluster.js';
import { waitFor } from '../../support/wait.js';

/** Longer than any bound of shutdown that a dead connection could make it wait for. */
const CONNECT_TIMEOUT_MS = 20_000;
/** How long a process may live on after it logged `hearth stopped` (two 1 s heartbeats would exceed it). */
const LINGER_LIMIT_MS = 1_000;

/**
 * A worker frozen (SIGSTOP) long enough for RabbitMQ to drop its connection (two missed 1 s
 * heartbeats) and its etcd lease to expire, then resumed (SIGCONT): SIGTERM must still stop it
 * promptly. Shutdown must not wait for an answer on the connection that died while it was
 * frozen (`amqp.connectTimeoutMs` is set far above what the test allows for the exit).
 */
describe('a worker resumed after SIGSTOP exits promptly on SIGTERM', () => {
  let etcd: EtcdTestContext;
  let amqp: AmqpTestContext;
  let env: Record<string, string>;
  const procs: HearthProcess[] = [];

  beforeAll(async () => {
    etcd = useEtcd();
    amqp = await useAmqp();
    const journal = join(await mkdtemp(join(tmpdir(), 'hearth-stop-')), 'journal.jsonl');
    env = memberEnv(etcd, amqp, 'sp', journal, { HEARTH_AMQP_HEARTBEAT_SECONDS: '1', HEARTH_AMQP_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS) });
  });
  afterAll(async () => {
    for (const p of procs) p.resume();
    await Promise.all(procs.map((p) => p.stop()));
    await etcd?.close();
    await amqp?.close();
  });

  const freezeAndThaw = async (host: string): Promise<HearthProcess> => {
    const worker = await startWorker(env, host);
    procs.push(worker);
    worker.pause();
    // Past two heartbeats and the lease TTL (3 s): the broker and etcd have both given it up.
    await new Promise((r) => setTimeout(r, 5_000));
    worker.resume();
    return worker;
  };

  /**
   * SIGTERM and wait for the exit. Also checks that nothing outlives the shutdown: the process
   * exits right after it logged `hearth stopped` — a leftover socket or heartbeat timer of a
   * dead AMQP connection would hold it for seconds (two heartbeats) or for good.
   */
  const timedStop = async (worker: HearthProcess): Promise<{ ms: number; code: number | null }> => {
    const at = Date.now();
    const { code } = await worker.stop(CONNECT_TIMEOUT_MS * 3);
    const exitedAt = Date.now();
    // The last lines reach the log file through a pipe, possibly after the exit event.
    await waitFor(() => worker.logs().some((l) => l.msg === 'hearth stopped'), { timeoutMs: 5_000, what: 'hearth stopped in the log' });
    const stoppedAt = Date.parse(String(worker.logs().find((l) => l.msg === 'hearth stopped')?.time));
    expect(exitedAt - stoppedAt).toBeLessThan(LINGER_LIMIT_MS);
    return { ms: exitedAt - at, code };
  };

  it('SIGTERM once it has recovered (reconnected, rejoined): exit 0, well within amqp.connectTimeoutMs', async () => {
    const worker = await freezeAndThaw('thawed');
    await waitFor(() => worker.logs().filter((l) => l.msg === 'connected to RabbitMQ').length >= 2, { timeoutMs: 15_000, what: 'the worker to reconnect' });
    await waitFor(async () => (await fetch(`${worker.opsUrl}/readyz`)).status === 200, { timeoutMs: 15_000, what: 'the worker to be ready again' });
    const { ms, code } = await timedStop(worker);
    console.log(`[amqp] SIGTERM after SIGSTOP/SIGCONT and recovery: exited ${code} after ${ms} ms`);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(CONNECT_TIMEOUT_MS / 2);
  });

  it('SIGTERM right after SIGCONT, before it noticed its connection is gone: exit 0, well within amqp.connectTimeoutMs', async () => {
    const worker = await freezeAndThaw('fresh');
    const { ms, code } = await timedStop(worker);
    console.log(`[amqp] SIGTERM right after SIGSTOP/SIGCONT: exited ${code} after ${ms} ms`);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(CONNECT_TIMEOUT_MS / 2);
  });
});
