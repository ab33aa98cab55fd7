import { CompareResult, CompareTarget, type Etcd3, type ICompare, type IKeyValue, type IRequestOp } from 'etcd3';
import { fromEtcdError } from '../etcd/errors.js';
import { type KeyLayout, prefixEnd } from '../etcd/keys.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Backoff } from '../lifecycle/retry.js';
import type { Logger } from '../observability/logger.js';
import type { Session } from '../session/session.js';
import type { RecordVersions } from '../state/record-versions.js';
import { watchUpgrade } from './etcd-upgrade-watch.js';
import { decodeSchemaState, encodePresence, encodeSchemaState, type PresenceRecord, type SchemaState } from './records.js';
import type { AnnounceResult, MigrationBatch, Presence, SchemaWriteResult, UpgradeEvent, UpgradeRegistry, UpgradeSnapshot } from './registry.js';
import { decodeUpgradeKeys } from './etcd-upgrade-keys.js';

/** What {@link EtcdUpgradeRegistry} needs. */
export interface EtcdUpgradeRegistryOptions {
  readonly client: Etcd3;
  readonly keys: KeyLayout;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Waits before a watch lists again after etcd could not be reached (`retry.*`). */
  readonly retry: Backoff;
  /** A lease for one presence: kept alive until closed, lost when etcd cannot be reached for its TTL. */
  readonly openSession: (signal?: AbortSignal) => Promise<Session>;
}

const put = (key: string, value: string, lease?: string): IRequestOp => ({
  request_put: { key: Buffer.from(key), value: Buffer.from(value), ...(lease === undefined ? {} : { lease }) },
});
const range = (key: string): IRequestOp => ({ request_range: { key: Buffer.from(key) } });
const modIs = (key: string, mod: string): ICompare => ({ key: Buffer.from(key), target: CompareTarget.Mod, result: CompareResult.Equal, mod_revision: mod });

/** A presence on its own session lease. */
class EtcdPresence implements Presence {
  constructor(
    readonly id: string,
    readonly session: Session,
  ) {}

  get signal(): AbortSignal {
    return this.session.signal;
  }

  close(): Promise<void> {
    return this.session.close();
  }
}

/**
 * The UpgradeRegistry on etcd (see the port for the contract). Every call has the client's
 * deadline; failures are translated to `BackendUnavailableError` at this boundary.
 */
export class EtcdUpgradeRegistry implements UpgradeRegistry {
  readonly distributed = true;
  private readonly watches = new AbortController();
  private readonly schemaKey: string;

  constructor(private readonly options: EtcdUpgradeRegistryOptions) {
    this.schemaKey = options.keys.upgradeSchema();
  }

  async schema(initial: number): Promise<SchemaState> {
    const value = encodeSchemaState({ version: initial, finalizedAtMs: null, finalizedBy: null, migration: null });
    const res = await this.call('reading the record schema', () =>
      this.options.client.kv.txn({
        compare: [{ key: Buffer.from(this.schemaKey), target: CompareTarget.Create, result: CompareResult.Equal, create_revision: '0' }],
        success: [put(this.schemaKey, value)],
        failure: [range(this.schemaKey)],
      }),
    );
    if (res.succeeded) {
      this.options.logger.info({ schema: initial }, 'the cluster had no record schema; starting it at this build’s lowest');
      return decodeSchemaState(value, this.schemaKey, res.header.revision);
    }
    const kv = res.responses[0]?.response_range?.kvs[0] as IKeyValue;
    return decodeSchemaState(kv.value.toString(), this.schemaKey, kv.mod_revision);
  }

  async snapshot(): Promise<UpgradeSnapshot> {
    const prefix = this.options.keys.upgrade();
    const res = await this.call('listing processes', () => this.options.client.kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(prefix) }));
    return decodeUpgradeKeys(this.options.keys, res.kvs, res.header.revision, this.options.logger);
  }

  async announce(record: PresenceRecord, expected: SchemaState, signal?: AbortSignal): Promise<AnnounceResult> {
    const session = await this.options.openSession(signal);
    try {
      const key = this.options.keys.upgradeProcess(record.host, session.leaseHex);
      const res = await this.call('announcing this process', () =>
        this.options.client.kv.txn({
          compare: [modIs(this.schemaKey, expected.revision)],
          success: [put(key, encodePresence(record), session.leaseId)],
          failure: [range(this.schemaKey)],
        }),
      );
      if (!res.succeeded) {
        await session.close();
        const kv = res.responses[0]?.response_range?.kvs[0];
        return { ok: false, schema: kv ? decodeSchemaState(kv.value.toString(), this.schemaKey, kv.mod_revision) : undefined };
      }
      return { ok: true, presence: new EtcdPresence(`${record.host}/${session.leaseHex}`, session) };
    } catch (err) {
      await session.close();
      throw err;
    }
  }

  watch(signal: AbortSignal): AsyncIterable<UpgradeEvent> {
    const { client, keys, clock, logger, retry } = this.options;
    return watchUpgrade({ client, keys, clock, logger, retry }, AbortSignal.any([signal, this.watches.signal]));
  }

  async writeSchema(next: Omit<SchemaState, 'revision'>, expected: { readonly schema: string; readonly processes?: string }): Promise<SchemaWriteResult> {
    const compare = [modIs(this.schemaKey, expected.schema)];
    if (expected.processes !== undefined) {
      // Every presence key was created at or before the caller's read: none announced since.
      const prefix = this.options.keys.upgradeProcesses();
      compare.push({
        key: Buffer.from(prefix),
        range_end: prefixEnd(prefix),
        target: CompareTarget.Create,
        result: CompareResult.Less,
        create_revision: String(BigInt(expected.processes) + 1n),
      });
    }
    const value = encodeSchemaState(next);
    const res = await this.call('writing the record schema', () =>
      this.options.client.kv.txn({ compare, success: [put(this.schemaKey, value)], failure: [range(this.schemaKey)] }),
    );
    if (res.succeeded) return { ok: true, schema: { ...next, revision: res.header.revision } };
    const kv = res.responses[0]?.response_range?.kvs[0];
    return { ok: false, reason: kv?.mod_revision === expected.schema ? 'processes' : 'schema' };
  }

  async claimMigration(presence: Presence): Promise<boolean> {
    if (!(presence instanceof EtcdPresence)) return false;
    const key = this.options.keys.upgradeMigrator();
    const res = await this.call('claiming the data migration', () =>
      this.options.client.kv.txn({
        compare: [{ key: Buffer.from(key), target: CompareTarget.Create, result: CompareResult.Equal, create_revision: '0' }],
        success: [put(key, presence.id, presence.session.leaseId)],
        failure: [range(key)],
      }),
    );
    return res.succeeded || res.responses[0]?.response_range?.kvs[0]?.value.toString() === presence.id;
  }

  async releaseMigration(presence: Presence): Promise<void> {
    const key = this.options.keys.upgradeMigrator();
    await this.call('releasing the data migration', () =>
      this.options.client.kv.txn({
        compare: [{ key: Buffer.from(key), target: CompareTarget.Value, result: CompareResult.Equal, value: Buffer.from(presence.id) }],
        success: [{ request_delete_range: { key: Buffer.from(key) } }],
        failure: [],
      }),
    );
  }

  async migrateBatch(to: number, cursor: string | null, limit: number, codec: RecordVersions): Promise<MigrationBatch> {
    const { keys, client, logger } = this.options;
    // Key order: ops/ sorts before resources/.
    const prefixes = [keys.ops(), `${keys.prefix}/resources/`];
    for (const prefix of prefixes) {
      const end = prefixEnd(prefix);
      if (cursor !== null && Buffer.compare(Buffer.from(cursor), end) >= 0) continue;
      const start = cursor !== null && cursor.startsWith(prefix) ? Buffer.concat([Buffer.from(cursor), Buffer.from([0])]) : Buffer.from(prefix);
      const res = await this.call('reading records to migrate', () => client.kv.range({ key: start, range_end: end, limit: String(limit) }));
      let migrated = 0;
      let raced = 0;
      const unreadable: string[] = [];
      await Promise.all(
        res.kvs.map(async (kv) => {
          const key = kv.key.toString();
          let rewritten: string | undefined;
          try {
            rewritten = codec.migrate(kv.value.toString(), key, to);
          } catch (err) {
            logger.warn({ err, key }, 'the data migration cannot read a record; it stays as it is, and the migration cannot end while it does');
            unreadable.push(key);
            return;
          }
          if (rewritten === undefined) return;
          const txn = await this.call(`migrating ${key}`, () => client.kv.txn({ compare: [modIs(key, kv.mod_revision)], success: [put(key, rewritten)], failure: [] }));
          if (txn.succeeded) migrated++;
          else raced++;
        }),
      );
      const last = res.kvs.at(-1)?.key.toString();
      if (last === undefined) continue;
      if (res.more) return { cursor: last, migrated, raced, unreadable };
      // This prefix is done: the next batch starts the next one (or the pass is over).
      return { cursor: prefix === prefixes.at(-1) ? null : end.toString(), migrated, raced, unreadable };
    }
    return { cursor: null, migrated: 0, raced: 0, unreadable: [] };
  }

  async close(): Promise<void> {
    this.watches.abort();
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw fromEtcdError(err, what);
    }
  }
}
