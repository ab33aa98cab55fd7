/**
 * The stream of mixed operations: `loops` clients, each running volume lifecycles through the
 * real HTTP API (create → extend → two snapshot creates at once → their deletes → delete),
 * waiting for each request's final status before the next. Every fourth lifecycle of a loop
 * ends differently: an extend, then an admin's `os-force_delete` while the extend may still run
 * (its op is replaced, its owner told to abort; the journal's overlap row proves the old call
 * ended before the delete's began); every fourth other one deletes a snapshot with
 * `os-force_delete`; every fourth third one copies the volume and its first snapshot (a clone
 * and a volume from the snapshot, at once) while the snapshot's delete is tried too (refused
 * while the copy holds it, or accepted first and the copy refused), and deletes the copies at
 * its end; every fourth first one runs an attach/detach cycle after its
 * extend — an attachment-create with a connector raced by a delete of the same volume (exactly
 * one is accepted), then attachment-complete and attachment-delete — so the invariant "no volume
 * attached and deleted at once" has races to judge. Every accepted (202) request is recorded with the
 * final status seen; a request that does not reach one within `finalWaitMs` is recorded without,
 * and its loop abandons that resource (the run's end state decides it).
 */
import type { AcceptedRequest, RequestKind } from './invariants.js';
import { FINAL_STATUSES } from './invariants.js';

/** An answer of the API (status 0: no answer — refused, reset or timed out). */
export interface Answer {
  readonly status: number;
  readonly body: unknown;
}

/** Calls the API at `base` with a bounded wait; never throws. */
export async function call(base: string, method: string, path: string, body?: unknown, init: { raw?: string; contentType?: string; timeoutMs?: number; version?: string } = {}): Promise<Answer> {
  const payload = init.raw ?? (body === undefined ? undefined : JSON.stringify(body));
  try {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { 'OpenStack-API-Version': init.version ?? 'volume 3.27', ...(payload === undefined ? {} : { 'content-type': init.contentType ?? 'application/json' }) },
      ...(payload === undefined ? {} : { body: payload }),
      signal: AbortSignal.timeout(init.timeoutMs ?? 15_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      // Not JSON: keep the text.
    }
    return { status: res.status, body: parsed };
  } catch {
    return { status: 0, body: null };
  }
}

/** Mutable form of an accepted request while the stream runs. */
type Accepted = { -readonly [K in keyof AcceptedRequest]: AcceptedRequest[K] };

/** The stream's record. */
export class Stream {
  readonly accepted: Accepted[] = [];
  /** Answers other than 202, by status (0 = no answer). */
  readonly refused = new Map<number, number>();
  /** When each answer other than 202 came (epoch ms), with its status. */
  readonly refusals: { readonly status: number; readonly at: number }[] = [];
  private stopped = false;
  private readonly loops: Promise<void>[] = [];

  constructor(
    private readonly api: () => string,
    private readonly finalWaitMs: number,
    private readonly namePrefix: string,
  ) {}

  /** Starts `n` client loops. */
  start(n: number): void {
    for (let i = 0; i < n; i++) this.loops.push(this.loop(i));
  }

  /** Asks the loops to stop after their current step and waits for them. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  /** The accepted requests, each marked `last` when no later request touched its resource. */
  requests(): AcceptedRequest[] {
    const seen = new Set<string>();
    const out: AcceptedRequest[] = [];
    for (let i = this.accepted.length - 1; i >= 0; i--) {
      const a = this.accepted[i];
      if (!a) continue;
      const key = `${a.type}/${a.id}`;
      out.unshift({ ...a, last: !seen.has(key) });
      seen.add(key);
    }
    return out;
  }

  private async loop(i: number): Promise<void> {
    /** Copies made in this lifecycle: deleted with its volume. */
    const copies: string[] = [];
    for (let n = 0; !this.stopped; n++) {
      const vol = await this.request('create_volume', 'volume', 'POST', '/v3/admin/volumes', { volume: { size: 1, name: `${this.namePrefix}${i}-${n}` } });
      if (vol === undefined) {
        await sleep(500);
        continue;
      }
      if (vol.final !== 'available' || this.stopped) continue;
      if (n % 4 === 3) {
        await this.forceDeleteMidExtend(vol.id, n);
        continue;
      }
      const ext = await this.request('extend_volume', 'volume', 'POST', `/v3/admin/volumes/${vol.id}/action`, { 'os-extend': { new_size: 2 } }, vol.id);
      if (ext !== undefined && ext.final === undefined) continue;
      if (!this.stopped && n % 4 === 0 && (ext === undefined || ext.final === 'available')) {
        const deleted = await this.attachCycle(vol.id);
        if (deleted !== false) continue;
      }
      if (!this.stopped && (ext === undefined || ext.final === 'available')) {
        // Two at once: both take the volume's lock, so one often waits behind the other, on
        // another worker — the lock hand-off the fence rows check when the holder dies.
        const snaps = await Promise.all([0, 1].map(() => this.request('create_snapshot', 'snapshot', 'POST', '/v3/admin/snapshots', { snapshot: { volume_id: vol.id } })));
        if (snaps.some((x) => x !== undefined && x.final === undefined)) continue;
        if (n % 4 === 2 && !this.stopped) {
          const copied = await this.copies(vol.id, snaps[0], `${this.namePrefix}${i}-${n}`);
          if (copied === undefined) continue;
          copies.push(...copied.copies);
          if (copied.snapshotDeleted) snaps[0] = undefined;
        }
        const dels = await Promise.all(
          snaps.flatMap((x, k) =>
            x === undefined
              ? []
              : k === 1 && n % 4 === 1
                ? [this.request('force_delete_snapshot', 'snapshot', 'POST', `/v3/admin/snapshots/${x.id}/action`, { 'os-force_delete': {} }, x.id)]
                : [this.request('delete_snapshot', 'snapshot', 'DELETE', `/v3/admin/snapshots/${x.id}`, undefined, x.id)],
          ),
        );
        if (dels.some((d) => d !== undefined && d.final === undefined)) continue;
      }
      await Promise.all([vol.id, ...copies.splice(0)].map((id) => this.request('delete_volume', 'volume', 'DELETE', `/v3/admin/volumes/${id}`, undefined, id)));
    }
  }

  /**
   * A clone of `volumeId` and a volume from `snapshot` requested at once, and 30 ms later a
   * delete of that snapshot: refused while the copy holds it, or accepted before it (the copy is
   * then refused). Resolves with the copies that became available (the loop deletes them) and
   * whether the snapshot was deleted; undefined when a request never reached a final status.
   */
  private async copies(volumeId: string, snapshot: Accepted | undefined, name: string): Promise<{ copies: string[]; snapshotDeleted: boolean } | undefined> {
    const [clone, restored, deletion] = await Promise.all([
      this.request('clone_volume', 'volume', 'POST', '/v3/admin/volumes', { volume: { size: null, source_volid: volumeId, name: `${name}-clone` } }),
      snapshot && this.request('create_volume_from_snapshot', 'volume', 'POST', '/v3/admin/volumes', { volume: { size: null, snapshot_id: snapshot.id, name: `${name}-restored` } }),
      snapshot && sleep(30).then(() => this.request('delete_snapshot', 'snapshot', 'DELETE', `/v3/admin/snapshots/${snapshot.id}`, undefined, snapshot.id)),
    ]);
    const made = [clone, restored].filter((x): x is Accepted => x !== undefined);
    if (made.some((x) => x.final === undefined) || (deletion !== undefined && deletion.final === undefined)) return undefined;
    return { copies: made.map((x) => x.id), snapshotDeleted: deletion?.final === 'deleted' };
  }

  /**
   * An extend, then — after 0 to 300 ms, so it lands before, during or after the extend's driver
   * call — an admin's force-delete of the volume. The extend is superseded once the force-delete
   * is accepted (its op was replaced); only the force-delete must reach a final status.
   */
  private async forceDeleteMidExtend(id: string, n: number): Promise<void> {
    const ext = await this.send('extend_volume', 'volume', 'POST', `/v3/admin/volumes/${id}/action`, { 'os-extend': { new_size: 2 } }, id);
    await sleep((n * 97) % 301);
    const del = await this.request('force_delete_volume', 'volume', 'POST', `/v3/admin/volumes/${id}/action`, { 'os-force_delete': {} }, id);
    if (ext === undefined) return;
    if (del !== undefined) {
      ext.superseded = true;
      return;
    }
    // Refused: the extend goes on by itself; wait for it as for any request.
    await this.settle(ext);
  }

  /**
   * An attachment-create with a connector and, at once, a delete of the volume: exactly one is
   * accepted. When the attach won: complete, then delete the attachment (the API answers both
   * once their worker finished). True when the volume's delete was accepted (the lifecycle is
   * over), undefined when the cycle was cut short (its loop abandons the volume).
   */
  private async attachCycle(id: string): Promise<boolean | undefined> {
    const [attach, del] = await Promise.all([
      call(this.api(), 'POST', '/v3/admin/attachments', { attachment: { volume_uuid: id, connector: { host: `${this.namePrefix}host`, mountpoint: '/dev/vdb' } } }, { version: 'volume 3.44', timeoutMs: 60_000 }),
      (async () => {
        await sleep(Math.floor(Math.random() * 30));
        return this.request('delete_volume', 'volume', 'DELETE', `/v3/admin/volumes/${id}`, undefined, id);
      })(),
    ]);
    if (del !== undefined) return true;
    if (attach.status !== 200) {
      this.refused.set(attach.status, (this.refused.get(attach.status) ?? 0) + 1);
      this.refusals.push({ status: attach.status, at: Date.now() });
      return false;
    }
    this.accepted.push({ kind: 'attach_volume', type: 'volume', id, last: false, final: 'reserved', completedAt: Date.now() });
    const attachmentId = (attach.body as { attachment?: { id?: string } }).attachment?.id ?? '';
    const complete = await call(this.api(), 'POST', `/v3/admin/attachments/${attachmentId}/action`, { 'os-complete': null }, { version: 'volume 3.44' });
    if (complete.status !== 204) return undefined;
    const detach = await call(this.api(), 'DELETE', `/v3/admin/attachments/${attachmentId}`, undefined, { version: 'volume 3.44', timeoutMs: 60_000 });
    if (detach.status !== 200) return undefined;
    this.accepted.push({ kind: 'detach_volume', type: 'volume', id, last: false, final: 'available', completedAt: Date.now() });
    return false;
  }

  /** Sends one request; when accepted, records it and waits for its final status. */
  private async request(kind: RequestKind, type: 'volume' | 'snapshot', method: string, path: string, body: unknown, knownId?: string): Promise<Accepted | undefined> {
    const entry = await this.send(kind, type, method, path, body, knownId);
    if (entry !== undefined) await this.settle(entry);
    return entry;
  }

  /** Sends one request; when accepted, records it (without waiting for its final status). */
  private async send(kind: RequestKind, type: 'volume' | 'snapshot', method: string, path: string, body: unknown, knownId?: string): Promise<Accepted | undefined> {
    const res = await call(this.api(), method, path, body);
    if (res.status !== 202) {
      this.refused.set(res.status, (this.refused.get(res.status) ?? 0) + 1);
      this.refusals.push({ status: res.status, at: Date.now() });
      return undefined;
    }
    const id = knownId ?? (res.body as Record<string, { id?: string }>)[type]?.id;
    if (id === undefined) throw new Error(`${method} ${path}: 202 without an id`);
    const entry: Accepted = { kind, type, id, last: false };
    this.accepted.push(entry);
    return entry;
  }

  /** Waits for `entry`'s final status and records it (none when the wait gave up). */
  private async settle(entry: Accepted): Promise<void> {
    const { kind, type, id } = entry;
    const final = await this.waitFinal(kind, type, id);
    if (final !== undefined) {
      entry.final = final;
      entry.completedAt = Date.now();
    }
  }

  private async waitFinal(kind: RequestKind, type: 'volume' | 'snapshot', id: string): Promise<string | undefined> {
    const deadline = Date.now() + this.finalWaitMs;
    while (Date.now() < deadline) {
      await sleep(200);
      const res = await call(this.api(), 'GET', `/v3/admin/${type}s/${id}`, undefined, { timeoutMs: 5_000 });
      const status = res.status === 404 ? 'deleted' : res.status === 200 ? (res.body as Record<string, { status: string }>)[type]?.status : undefined;
      if (status !== undefined && FINAL_STATUSES[kind].includes(status)) return status;
    }
    return undefined;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
