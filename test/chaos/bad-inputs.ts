/**
 * Malformed and oversized inputs mixed into the stream: API requests (expected: 4xx with Cinder's
 * fault body, nothing written) and AMQP messages published straight to the cluster's work queue
 * (expected: dead-lettered, nothing else happens).
 */
import { randomUUID } from 'node:crypto';
import { type ChannelModel, connect } from 'amqplib';
import type { BadInput } from './invariants.js';
import { call } from './stream.js';

/** One bad API request: what it is and how to send it. */
interface BadRequest {
  readonly what: string;
  readonly method: string;
  readonly path: string;
  readonly raw: string;
  readonly contentType?: string;
}

/** The bad requests, in turn; `name` marks anything they could (wrongly) create. */
export function badRequests(name: string): BadRequest[] {
  const vol = (v: unknown): string => JSON.stringify({ volume: v });
  return [
    { what: 'create: truncated JSON', method: 'POST', path: '/v3/admin/volumes', raw: `{"volume": {"size": 1, "name": "${name}"` },
    { what: 'create: 80 KiB body', method: 'POST', path: '/v3/admin/volumes', raw: vol({ size: 1, name: name, description: 'x'.repeat(80 * 1024) }) },
    { what: 'create: size -1', method: 'POST', path: '/v3/admin/volumes', raw: vol({ size: -1, name }) },
    { what: 'create: size "big"', method: 'POST', path: '/v3/admin/volumes', raw: vol({ size: 'big', name }) },
    { what: 'create: no volume key', method: 'POST', path: '/v3/admin/volumes', raw: JSON.stringify({ size: 1, name }) },
    { what: 'create: text/plain', method: 'POST', path: '/v3/admin/volumes', raw: 'size=1', contentType: 'text/plain' },
    { what: 'extend: unknown volume', method: 'POST', path: `/v3/admin/volumes/${randomUUID()}/action`, raw: JSON.stringify({ 'os-extend': { new_size: 2 } }) },
    { what: 'extend: new_size "x"', method: 'POST', path: `/v3/admin/volumes/${randomUUID()}/action`, raw: JSON.stringify({ 'os-extend': { new_size: 'x' } }) },
    { what: 'snapshot: volume_id not a UUID', method: 'POST', path: '/v3/admin/snapshots', raw: JSON.stringify({ snapshot: { volume_id: '../../etc', name } }) },
    { what: 'delete: id not a UUID', method: 'DELETE', path: '/v3/admin/volumes/%2e%2e', raw: '' },
    { what: 'clone: source that does not exist', method: 'POST', path: '/v3/admin/volumes', raw: vol({ size: null, source_volid: randomUUID(), name }) },
    { what: 'clone: source_volid not a UUID', method: 'POST', path: '/v3/admin/volumes', raw: vol({ size: 1, source_volid: '../../etc', name }) },
    { what: 'from snapshot: snapshot that does not exist', method: 'POST', path: '/v3/admin/volumes', raw: vol({ size: 1, snapshot_id: randomUUID(), name }) },
    { what: 'copy: two sources', method: 'POST', path: '/v3/admin/volumes', raw: vol({ size: 1, snapshot_id: randomUUID(), source_volid: randomUUID(), name }) },
  ];
}

/** True when `body` is Cinder's fault body for `status`: `{"<fault>": {"code": status, "message": "…"}}`. */
export function isFaultBody(body: unknown, status: number): boolean {
  if (typeof body !== 'object' || body === null) return false;
  const entries = Object.entries(body);
  if (entries.length !== 1) return false;
  const inner = entries[0]?.[1] as { code?: unknown; message?: unknown } | undefined;
  return inner?.code === status && typeof inner.message === 'string' && inner.message.length > 0;
}

/** Sends bad request `n` (cycling through the list) and returns what came back. */
export async function sendBadRequest(api: string, name: string, n: number): Promise<BadInput | undefined> {
  const list = badRequests(name);
  const r = list[n % list.length];
  if (!r) return undefined;
  const res = await call(api, r.method, r.path, undefined, { ...(r.raw ? { raw: r.raw } : {}), ...(r.contentType ? { contentType: r.contentType } : {}) });
  // No answer (the API restarting its etcd connection, say) is not an answer to judge.
  if (res.status === 0 || res.status === 503) return undefined;
  return { what: r.what, outcome: res.status, faultBody: isFaultBody(res.body, res.status) };
}

/** The bad AMQP messages, in turn; `id` is the resource a message names, if any (nothing may happen to it). */
export function badMessages(): { what: string; content: Buffer; id?: string }[] {
  const big = randomUUID();
  const future = randomUUID();
  return [
    { what: 'amqp: not JSON', content: Buffer.from('{"kind": "create_volume", "id": ') },
    { what: 'amqp: JSON of the wrong shape', content: Buffer.from(JSON.stringify({ v: 1, kind: 'drop_all_volumes', id: 42 })) },
    { what: 'amqp: 12 KiB message', id: big, content: Buffer.from(JSON.stringify({ v: 1, kind: 'create_volume', type: 'volume', id: big, pad: 'x'.repeat(12 * 1024) })) },
    { what: 'amqp: unknown version', id: future, content: Buffer.from(JSON.stringify({ v: 99, kind: 'create_volume', type: 'volume', id: future })) },
  ];
}

/** How long a bad message's publish may wait for its confirm. */
const PUBLISH_TIMEOUT_MS = 10_000;

const sleepMs = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

/**
 * Publishes bad message `n` to the cluster queue (through the main exchange, as a job would go)
 * with publisher confirms, on a connection of its own. Returns its correlation id, or undefined
 * when the broker was not there or did not confirm within 10 s (the caller tries again later).
 */
export async function publishBadMessage(url: string, exchange: string, routingKey: string, n: number): Promise<{ what: string; correlationId: string; id?: string } | undefined> {
  const list = badMessages();
  const m = list[n % list.length];
  if (!m) return undefined;
  const correlationId = `chaos-bad-${n}-${randomUUID().slice(0, 8)}`;
  let conn: ChannelModel | undefined;
  const publish = async (): Promise<void> => {
    conn = await connect(url, { timeout: 3_000 });
    conn.on('error', () => undefined);
    const ch = await conn.createConfirmChannel();
    ch.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      ch.publish(exchange, routingKey, m.content, { correlationId, contentType: 'application/json', persistent: true, mandatory: true }, (err) => (err ? reject(err as Error) : resolve()));
    });
  };
  // Bounded as a whole: a node frozen (SIGSTOP) answers neither the handshake, the confirm nor
  // the close, and the suite must not wait for it (an HA fault did exactly that).
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      publish(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('no confirm in time')), PUBLISH_TIMEOUT_MS);
      }),
    ]);
    return { what: m.what, correlationId, ...(m.id === undefined ? {} : { id: m.id }) };
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    const c = conn;
    if (c) await Promise.race([c.close().catch(() => undefined), sleepMs(2_000)]);
  }
}

/** Takes every message off the dead-letter queue and returns their correlation ids. */
export async function drainDeadLetters(url: string, queue: string): Promise<Set<string>> {
  const conn = await connect(url, { timeout: 5_000 });
  try {
    const ch = await conn.createChannel();
    const ids = new Set<string>();
    for (let i = 0; i < 100_000; i++) {
      const msg = await ch.get(queue, { noAck: true });
      if (msg === false) break;
      if (typeof msg.properties.correlationId === 'string') ids.add(msg.properties.correlationId);
    }
    return ids;
  } finally {
    await conn.close().catch(() => undefined);
  }
}
