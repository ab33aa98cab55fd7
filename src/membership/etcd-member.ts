import type { Etcd3, IKeyValue, ITxnResponse } from 'etcd3';
import type { KeyLayout } from '../etcd/keys.js';
import { fromEtcdError } from '../etcd/errors.js';
import type { Fence } from '../fence.js';
import type { OwnerRef } from '../identity.js';
import type { Clock } from '../lifecycle/clock.js';
import { isLive, type Session, sessionKeyFence } from '../session/session.js';
import type { HeartbeatResult, Member } from './membership.js';
import type { BackendReport } from './backend-report.js';
import { encodeIncarnationRecord, type IncarnationEnd } from './incarnation-records.js';
import { type AliveRecord, decodeService, encodeRecord, type ServiceRecord } from './records.js';

/** How often a heartbeat re-reads and retries after another writer changed the service record. */
const MAX_SERVICE_RACES = 3;

/** Where an {@link EtcdMember} lives and what it wrote at join. */
export interface EtcdMemberInit {
  readonly client: Etcd3;
  readonly keys: KeyLayout;
  readonly clock: Clock;
  readonly session: Session;
  readonly alive: AliveRecord;
  /** Create revision of the alive key. */
  readonly aliveRevision: string;
  readonly service: ServiceRecord;
  /** Mod revision of the service record as written at join. */
  readonly serviceRevision: string;
}

/** First key-value of response `i` of a transaction, if any. */
export function rangeKv(tx: ITxnResponse, i: number): IKeyValue | undefined {
  return tx.responses[i]?.response_range?.kvs[0];
}

/**
 * One etcd incarnation's membership: its alive key on the session lease and its service
 * record. Every write is a transaction conditioned on the alive key still having the create
 * revision this incarnation gave it, so nothing is written for an incarnation that is gone.
 */
export class EtcdMember implements Member {
  readonly owner: OwnerRef;
  readonly cluster: string;
  private readonly controller = new AbortController();
  private service: ServiceRecord;
  private serviceRevision: string;
  private leaving: Promise<void> | undefined;
  private backend: BackendReport | undefined;
  private readonly aliveKey: string;
  private readonly serviceKey: string;
  private fenceValue: Fence | undefined;

  constructor(private readonly init: EtcdMemberInit) {
    const { alive, keys, session } = init;
    this.owner = { host: alive.host, incarnation: alive.incarnation, aliveRevision: init.aliveRevision };
    this.cluster = alive.cluster;
    this.service = init.service;
    this.serviceRevision = init.serviceRevision;
    this.aliveKey = keys.alive(alive.host);
    this.serviceKey = keys.service(init.service.binary, alive.host);
    const unsubscribe = session.onStateChange((change) => {
      if (change.state === 'lost' || change.state === 'closed') this.end('session ' + change.state);
    });
    this.controller.signal.addEventListener('abort', unsubscribe, { once: true });
    if (session.state === 'lost' || session.state === 'closed') this.end(`session ${session.state}`);
  }

  /** Reads the session's state too: it follows its own clock, so a loss shows even before its event. */
  get joined(): boolean {
    return !this.controller.signal.aborted && isLive(this.init.session.state);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  fence(): Fence {
    // Built once: every worker write carries it.
    if (this.fenceValue === undefined) {
      const base = sessionKeyFence(this.init.session, this.aliveKey, this.owner.aliveRevision, `alive/${this.owner.host} rev ${this.owner.aliveRevision}`);
      this.fenceValue = { ...base, holds: () => this.joined && base.holds() };
    }
    return this.fenceValue;
  }

  async heartbeat(): Promise<HeartbeatResult> {
    if (!this.joined) return { ok: false, reason: 'left' };
    const { client, session } = this.init;
    const now = this.init.clock.now();
    const alive: AliveRecord = { ...this.init.alive, heartbeatAtMs: now, ...(this.backend ? { backend: this.backend } : {}) };
    for (let attempt = 0; attempt < MAX_SERVICE_RACES; attempt++) {
      const service: ServiceRecord = { ...this.service, heartbeatAtMs: now };
      let tx: ITxnResponse;
      try {
        tx = await client
          .if(this.aliveKey, 'Create', '==', this.owner.aliveRevision)
          .and(this.serviceKey, 'Mod', '==', this.serviceRevision)
          .then(client.put(this.aliveKey).value(encodeRecord(alive)).lease(session.leaseId), client.put(this.serviceKey).value(encodeRecord(service)))
          .else(client.get(this.aliveKey), client.get(this.serviceKey))
          .commit();
      } catch (err) {
        throw fromEtcdError(err, `heartbeat of ${this.owner.host}`);
      }
      if (tx.succeeded) {
        this.service = service;
        this.serviceRevision = tx.header.revision;
        return { ok: true, atMs: now };
      }
      if (rangeKv(tx, 0)?.create_revision !== this.owner.aliveRevision) {
        this.end('evicted');
        return { ok: false, reason: 'evicted' };
      }
      this.adoptService(rangeKv(tx, 1));
    }
    // Another writer keeps changing the service record; the alive key was refreshed by none of
    // these attempts, but liveness rides on the lease, so try again on the next beat.
    return { ok: true, atMs: this.service.heartbeatAtMs ?? now };
  }

  reportBackend(report: BackendReport): Promise<HeartbeatResult> {
    this.backend = report;
    return this.heartbeat();
  }

  /** Takes the service record another writer left (keeping its changes) for the next write. */
  private adoptService(kv: IKeyValue | undefined): void {
    if (kv === undefined) {
      this.serviceRevision = '0';
      return;
    }
    this.service = decodeService(kv.value.toString());
    this.serviceRevision = kv.mod_revision;
  }

  leave(options: { readonly clean?: boolean } = {}): Promise<void> {
    this.leaving ??= this.doLeave(options.clean === true);
    return this.leaving;
  }

  private async doLeave(clean: boolean): Promise<void> {
    const wasJoined = this.joined;
    this.end('left');
    if (!wasJoined && this.init.session.state === 'closed') return;
    const { client, keys } = this.init;
    const nowMs = this.init.clock.now();
    const service = encodeRecord({ ...this.service, heartbeatAtMs: nowMs });
    // A clean leave records the end in the same write: it needs no fence, and nobody waits for one.
    const ended: IncarnationEnd = { incarnation: this.owner.incarnation, host: this.owner.host, how: 'left', by: this.owner.incarnation, atMs: nowMs, detail: 'left cleanly after its runs settled' };
    const endPut = (): ReturnType<Etcd3['put']>[] => (clean && wasJoined ? [client.put(keys.fenced(this.owner.incarnation)).value(encodeIncarnationRecord(ended))] : []);
    try {
      const tx = await client
        .if(this.aliveKey, 'Create', '==', this.owner.aliveRevision)
        .and(this.serviceKey, 'Mod', '==', this.serviceRevision)
        .then(client.delete().key(this.aliveKey), client.put(this.serviceKey).value(service), ...endPut())
        .commit();
      if (!tx.succeeded) {
        // The service record changed under us: still delete the alive key if it is ours.
        await client
          .if(this.aliveKey, 'Create', '==', this.owner.aliveRevision)
          .then(client.delete().key(this.aliveKey), ...endPut())
          .commit();
      }
    } catch (err) {
      throw fromEtcdError(err, `leave of ${this.owner.host}`);
    }
  }

  private end(reason: string): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }
}
