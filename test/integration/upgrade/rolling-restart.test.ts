// A rolling restart under load, end to end with real processes, etcd and RabbitMQ: client
// streams of mixed operations go through a load balancer that routes only to API processes whose
// /readyz answers (and never to one being terminated), while each of three workers and then each
// of two API processes is replaced as a StatefulSet does it: the endpoint is removed, the preStop
// delay passes, SIGTERM, and the next pod is replaced only once the replacement is ready.
// Checked: no request failed (no 5xx, no refused connection), none lost, nothing transitional,
// the journal clean, nothing dead-lettered. Measured (logged, never asserted): the slowest
// operation during the roll against the same stream's p99 without a roll.
import { mkdtemp } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTransitional } from '../../../src/state/state-machine.js';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { ClusterClient, memberEnv, readJournal } from '../../support/orphans-cluster.js';
import { waitFor } from '../../support/wait.js';

/** The base's preStop sleep, shortened: long enough for the balancer to stop routing. */
const PRE_STOP_MS = 1_000;
const READINESS_POLL_MS = 100;

interface Backend {
  readonly process: HearthProcess;
  ready: boolean;
  /** Its pod is being deleted: the Service routes to it no more (endpoint removed). */
  terminating: boolean;
}

/** A Service in front of the API processes: routes only to ready, non-terminating ones. */
class ReadinessBalancer {
  readonly backends: Backend[] = [];
  /** Every answer the clients got, by status; `0` for a request the balancer could not forward. */
  readonly statuses = new Map<number, number>();
  readonly failures: string[] = [];
  private server: Server | undefined;
  private next = 0;
  private readonly poller: NodeJS.Timeout;

  constructor() {
    this.poller = setInterval(() => void this.poll(), READINESS_POLL_MS);
  }

  async listen(): Promise<string> {
    this.server = createServer((req, res) => void this.forward(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  add(process: HearthProcess): Backend {
    const backend: Backend = { process, ready: false, terminating: false };
    this.backends.push(backend);
    return backend;
  }

  remove(backend: Backend): void {
    this.backends.splice(this.backends.indexOf(backend), 1);
  }

  async close(): Promise<void> {
    clearInterval(this.poller);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async poll(): Promise<void> {
    await Promise.all(
      this.backends.map(async (b) => {
        try {
          b.ready = (await fetch(`${b.process.opsUrl}/readyz`, { signal: AbortSignal.timeout(1_000) })).status === 200;
        } catch {
          b.ready = false;
        }
      }),
    );
  }

  private pick(): Backend | undefined {
    const live = this.backends.filter((b) => b.ready && !b.terminating);
    return live.length === 0 ? undefined : live[this.next++ % live.length];
  }

  private async forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const backend = this.pick();
    let status = 0;
    try {
      if (!backend) throw new Error('no ready API process');
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'connection' && k !== 'content-length') headers[k] = v;
      const upstream = await fetch(`${backend.process.apiUrl}${req.url ?? '/'}`, {
        method: req.method ?? 'GET',
        headers,
        ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
      status = upstream.status;
      const body = Buffer.from(await upstream.arrayBuffer());
      res.writeHead(status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' }).end(body);
    } catch (err) {
      const cause = (err as Error & { cause?: Error }).cause;
      this.failures.push(`${new Date().toISOString()} ${req.method} ${req.url} via ${backend?.process.name ?? 'none'}: ${(err as Error).message}${cause ? ` (${cause.message})` : ''}`);
      res.writeHead(502).end();
    } finally {
      this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
    }
  }
}

/** A volume's life through the API: create, snapshot, extend, delete both; every step must succeed. */
class MixedStream {
  readonly durationsMs: { at: number; ms: number }[] = [];
  readonly errors: string[] = [];
  readonly volumes = new Set<string>();
  private stopping = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly client: ClusterClient,
    private readonly lanes: number,
  ) {}

  start(): this {
    this.loops = Array.from({ length: this.lanes }, () => this.loop());
    return this;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  private async timed<T>(fn: () => Promise<T>): Promise<T> {
    const at = Date.now();
    const out = await fn();
    this.durationsMs.push({ at, ms: Date.now() - at });
    return out;
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      try {
        const id = await this.timed(async () => {
          const v = await this.client.createVolume(1);
          this.volumes.add(v);
          await this.client.waitStatus('volume', v, 'available', 150_000);
          return v;
        });
        const snap = await this.timed(async () => {
          const s = await this.client.createSnapshot(id);
          await this.client.waitStatus('snapshot', s, 'available', 150_000);
          return s;
        });
        await this.timed(async () => {
          await this.client.extend(id, 2);
          await waitFor(async () => (await this.client.record('volume', id)).size === 2 && (await this.client.status('volume', id)) === 'available', { timeoutMs: 150_000, intervalMs: 100 });
        });
        await this.timed(async () => {
          await this.client.deleteSnapshot(snap);
          await waitFor(async () => (await fetch404(this.client, 'snapshot', snap)) || undefined, { timeoutMs: 150_000, intervalMs: 100 });
        });
        await this.timed(async () => {
          await this.client.deleteVolume(id);
          await waitFor(async () => (await fetch404(this.client, 'volume', id)) || undefined, { timeoutMs: 150_000, intervalMs: 100 });
        });
        this.volumes.delete(id);
      } catch (err) {
        this.errors.push(`${new Date().toISOString()} ${(err as Error).message}`);
        return;
      }
    }
  }
}

/** True once the resource is gone (the client's `record` throws on a 404). */
async function fetch404(client: ClusterClient, type: 'volume' | 'snapshot', id: string): Promise<boolean> {
  try {
    await client.record(type, id);
    return false;
  } catch (err) {
    if (/HTTP 404/.test((err as Error).message)) return true;
    throw err;
  }
}

function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)] ?? 0;
}

describe('a rolling restart under load', () => {
  let etcd: EtcdTestContext;
  let amqp: AmqpTestContext;
  let journal: string;
  let env: Record<string, string>;
  let lb: ReadinessBalancer;
  const procs = new Set<HearthProcess>();

  async function start(name: string, host: string, roles: string): Promise<HearthProcess> {
    const p = await startHearth({ name, env: { ...env, HEARTH_HOST: host, HEARTH_ROLES: roles, HEARTH_LOG_LEVEL: 'info' }, startTimeoutMs: 150_000 });
    procs.add(p);
    return p;
  }

  /** The StatefulSet's way: endpoint removed, preStop, SIGTERM and wait; then the replacement, ready. */
  async function replace(old: HearthProcess, host: string, roles: string, backend?: Backend): Promise<HearthProcess> {
    console.info(`${new Date().toISOString()} replacing ${old.name}`);
    if (backend) backend.terminating = true;
    await new Promise((r) => setTimeout(r, PRE_STOP_MS));
    const exit = await old.stop(45_000);
    procs.delete(old);
    expect(exit.code, `${old.name} exit`).toBe(0);
    if (backend) lb.remove(backend);
    const next = await start(`${old.name}-r`, host, roles);
    if (roles === 'api') {
      const b = lb.add(next);
      await waitFor(() => b.ready, { timeoutMs: 30_000, what: `${next.name} ready behind the balancer` });
    }
    return next;
  }

  beforeAll(async () => {
    etcd = useEtcd();
    amqp = await useAmqp();
    journal = join(await mkdtemp(join(tmpdir(), 'hearth-roll-')), 'journal.jsonl');
    // A lease TTL of the default's order: this test is about the roll, and a 3 s lease can lapse
    // on a loaded machine (a starved process loses its session, which is another test's subject).
    env = memberEnv(etcd, amqp, 'roll', journal, { HEARTH_DRIVER_FAKE_LATENCY_MS: '150', HEARTH_LEASE_TTL_MS: '10000', HEARTH_LEASE_MARGIN_MS: '3000' });
    lb = new ReadinessBalancer();
  });
  afterAll(async () => {
    await lb?.close();
    await Promise.all([...procs].map((p) => p.stop()));
    await etcd?.close();
    await amqp?.close();
  });

  it('three workers and then two API processes, one at a time: no request fails, none is lost, nothing is left behind', async () => {
    const workers = [await start('w-0', 'w-0', 'worker'), await start('w-1', 'w-1', 'worker'), await start('w-2', 'w-2', 'worker')];
    const apis = [await start('api-0', 'api-0', 'api'), await start('api-1', 'api-1', 'api')];
    const backends = apis.map((p) => lb.add(p));
    const url = await lb.listen();
    await waitFor(() => backends.every((b) => b.ready), { timeoutMs: 30_000, what: 'the API processes ready behind the balancer' });
    const client = new ClusterClient({ apiUrl: url, opsUrl: apis[0]!.opsUrl });
    const stream = new MixedStream(client, 3).start();

    // Without a roll first: the baseline of the same stream.
    await waitFor(() => stream.durationsMs.length >= 15 || stream.errors.length > 0 || undefined, { timeoutMs: 120_000, intervalMs: 200, what: 'baseline operations' });
    const rollStart = Date.now();
    console.info(`${new Date().toISOString()} baseline: ${stream.durationsMs.length} operations; rolling`);

    // Highest ordinal first, as the StatefulSet controller does.
    for (const i of [2, 1, 0]) workers[i] = await replace(workers[i]!, `w-${i}`, 'worker');
    for (const i of [1, 0]) apis[i] = await replace(apis[i]!, `api-${i}`, 'api', lb.backends.find((b) => b.process === apis[i]));
    const rollEnd = Date.now();

    // A few more operations on the new processes, then stop.
    const after = stream.durationsMs.length;
    await waitFor(() => stream.durationsMs.length >= after + 10 || stream.errors.length > 0 || undefined, { timeoutMs: 120_000, intervalMs: 200, what: 'operations after the roll' });
    await stream.stop();

    expect({ stream: stream.errors, balancer: lb.failures }).toEqual({ stream: [], balancer: [] });
    expect([...lb.statuses.keys()].filter((s) => s === 0 || s >= 500)).toEqual([]);

    // Nothing transitional, nothing lost: every volume and snapshot left is in a stable state.
    const listed = (await (await fetch(`${url}/v3/admin/volumes/detail`, { headers: { 'OpenStack-API-Version': 'volume 3.27' } })).json()) as { volumes: { id: string; status: string }[] };
    expect(listed.volumes.filter((v) => isTransitional('volume', v.status))).toEqual([]);
    expect(listed.volumes.map((v) => v.id).sort()).toEqual([...stream.volumes].sort());
    const snaps = (await (await fetch(`${url}/v3/admin/snapshots/detail`, { headers: { 'OpenStack-API-Version': 'volume 3.27' } })).json()) as { snapshots: { status: string }[] };
    expect(snaps.snapshots.filter((s) => isTransitional('snapshot', s.status))).toEqual([]);
    const dead = (await (await fetch(`${url}/hearth/v1/dead-letters`)).json()) as { dead_letters: unknown[] };
    expect(dead.dead_letters).toEqual([]);

    const { report } = await readJournal(journal);
    expect(report.malformed).toBe(0);
    expect(report.unfinished).toEqual([]);
    expect(report.overlaps).toEqual([]);
    expect(report.duplicates).toEqual([]);

    // Measured, not asserted (the machine is shared): the roll's slowest operation against the
    // baseline's p99.
    const baseline = stream.durationsMs.filter((d) => d.at < rollStart).map((d) => d.ms);
    const during = stream.durationsMs.filter((d) => d.at >= rollStart && d.at <= rollEnd).map((d) => d.ms);
    console.info(
      JSON.stringify({ roll_ms: rollEnd - rollStart, baseline_ops: baseline.length, baseline_p99_ms: p99(baseline), roll_ops: during.length, roll_max_latency_ms: Math.max(0, ...during) }),
    );
  }, 900_000);
});
