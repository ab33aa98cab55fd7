// What rolling-upgrade tests and the `upgrade` benchmark share: a Service-like balancer that
// routes only to ready API processes, and a client stream of mixed operations (create, snapshot,
// extend, delete both) whose every step must succeed, timed.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HearthProcess } from './hearth-process.js';
import type { ClusterClient } from './orphans-cluster.js';
import { waitFor } from './wait.js';

/** The base's preStop sleep, shortened: long enough for the balancer to stop routing. */
export const PRE_STOP_MS = 1_000;
const READINESS_POLL_MS = 100;

export interface Backend {
  readonly process: HearthProcess;
  ready: boolean;
  /** Its pod is being deleted: the Service routes to it no more (endpoint removed). */
  terminating: boolean;
}

/** A Service in front of the API processes: routes only to ready, non-terminating ones. */
export class ReadinessBalancer {
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
export class MixedStream {
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
export async function fetch404(client: ClusterClient, type: 'volume' | 'snapshot', id: string): Promise<boolean> {
  try {
    await client.record(type, id);
    return false;
  } catch (err) {
    if (/HTTP 404/.test((err as Error).message)) return true;
    throw err;
  }
}

export function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)] ?? 0;
}

/** The processes of a cluster being rolled, and how to start one. */
export interface RollCluster {
  readonly lb: ReadinessBalancer;
  start(name: string, host: string, roles: 'worker' | 'api'): Promise<HearthProcess>;
  /** Told when a process has exited, so the caller stops tracking it. */
  exited(process: HearthProcess): void;
}

/**
 * Replaces one process the StatefulSet's way: its endpoint removed, the preStop delay, SIGTERM
 * and wait, then the replacement started and (for an API process) ready behind the balancer.
 *
 * @throws Error when the old process did not exit with 0 or the replacement never got ready.
 */
export async function replaceProcess(cluster: RollCluster, old: HearthProcess, host: string, roles: 'worker' | 'api'): Promise<HearthProcess> {
  console.info(`${new Date().toISOString()} replacing ${old.name}`);
  const backend = cluster.lb.backends.find((b) => b.process === old);
  if (backend) backend.terminating = true;
  await new Promise((r) => setTimeout(r, PRE_STOP_MS));
  const exit = await old.stop(45_000);
  cluster.exited(old);
  if (exit.code !== 0) throw new Error(`${old.name} exited with ${JSON.stringify(exit)} on SIGTERM`);
  if (backend) cluster.lb.remove(backend);
  const next = await cluster.start(`${old.name}-r`, host, roles);
  if (roles === 'api') {
    const b = cluster.lb.add(next);
    await waitFor(() => b.ready, { timeoutMs: 30_000, what: `${next.name} ready behind the balancer` });
  }
  return next;
}

/**
 * The whole roll: every worker, then every API process, highest ordinal first as the StatefulSet
 * controller does, one at a time. `workers[i]` and `apis[i]` run host `w-<i>` / `api-<i>` and
 * are replaced in place. Returns when the roll started and ended (epoch ms).
 */
export async function rollAll(cluster: RollCluster, workers: HearthProcess[], apis: HearthProcess[]): Promise<{ startedAt: number; endedAt: number }> {
  const startedAt = Date.now();
  for (let i = workers.length - 1; i >= 0; i--) workers[i] = await replaceProcess(cluster, workers[i] as HearthProcess, `w-${i}`, 'worker');
  for (let i = apis.length - 1; i >= 0; i--) apis[i] = await replaceProcess(cluster, apis[i] as HearthProcess, `api-${i}`, 'api');
  return { startedAt, endedAt: Date.now() };
}
