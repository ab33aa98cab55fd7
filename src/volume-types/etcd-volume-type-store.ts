import { CompareResult, CompareTarget, type Etcd3, type ICompare, type IRequestOp } from 'etcd3';
import { fromEtcdError } from '../etcd/errors.js';
import type { KeyLayout } from '../etcd/keys.js';
import {
  applySpecChange,
  byName,
  decodeVolumeType,
  encodeVolumeType,
  type SpecChange,
  type TypeWriteResult,
  type VolumeType,
  type VolumeTypeStore,
} from './volume-type-store.js';

/** Attempts of a read-compare-write against concurrent changes of one type. */
const CHANGE_ATTEMPTS = 8;

const put = (key: string, value: string): IRequestOp => ({ request_put: { key: Buffer.from(key), value: Buffer.from(value) } });
const del = (key: string): IRequestOp => ({ request_delete_range: { key: Buffer.from(key) } });
const absent = (key: string): ICompare => ({ key: Buffer.from(key), target: CompareTarget.Create, result: CompareResult.Equal, create_revision: '0' });
const modIs = (key: string, mod: string): ICompare => ({ key: Buffer.from(key), target: CompareTarget.Mod, result: CompareResult.Equal, mod_revision: mod });

/**
 * Volume types on etcd: `volume_types/<id>` holds the type, `volume_type_names/<name>` its id;
 * both are written and removed in one transaction, so two creates of one name cannot both win.
 * A change of extra specs compares the type key's mod revision.
 *
 * Failure semantics: every call has the client's deadline and fails with a retryable
 * `BackendUnavailableError` when etcd cannot be reached.
 */
export class EtcdVolumeTypeStore implements VolumeTypeStore {
  constructor(private readonly options: { readonly client: Etcd3; readonly keys: KeyLayout }) {}

  async create(type: VolumeType): Promise<TypeWriteResult> {
    const { keys } = this.options;
    const res = await this.call('creating a volume type', () =>
      this.options.client.kv.txn({
        compare: [absent(keys.volumeTypeName(type.name)), absent(keys.volumeType(type.id))],
        success: [put(keys.volumeType(type.id), encodeVolumeType(type)), put(keys.volumeTypeName(type.name), type.id)],
        failure: [],
      }),
    );
    return res.succeeded ? { ok: true, type } : { ok: false, reason: 'name-taken' };
  }

  async get(id: string): Promise<VolumeType | undefined> {
    const text = await this.call('reading a volume type', () => this.options.client.get(this.options.keys.volumeType(id)).string());
    return text === null ? undefined : decodeVolumeType(text);
  }

  async getByName(name: string): Promise<VolumeType | undefined> {
    const id = await this.call('reading a volume type name', () => this.options.client.get(this.options.keys.volumeTypeName(name)).string());
    return id === null ? undefined : this.get(id);
  }

  async list(): Promise<VolumeType[]> {
    const values = await this.call('listing volume types', () => this.options.client.getAll().prefix(this.options.keys.volumeTypes()).strings());
    return byName(Object.values(values).map(decodeVolumeType).filter((t): t is VolumeType => t !== undefined));
  }

  async changeSpecs(id: string, change: SpecChange): Promise<TypeWriteResult> {
    const key = this.options.keys.volumeType(id);
    for (let attempt = 1; attempt <= CHANGE_ATTEMPTS; attempt++) {
      const res = await this.call('reading a volume type', () => this.options.client.kv.range({ key: Buffer.from(key) }));
      const kv = res.kvs[0];
      const current = kv && decodeVolumeType(kv.value.toString());
      if (!kv || !current) return { ok: false, reason: 'not-found' };
      const next: VolumeType = { ...current, extraSpecs: applySpecChange(current.extraSpecs, change) };
      const write = await this.call('changing a volume type', () =>
        this.options.client.kv.txn({ compare: [modIs(key, kv.mod_revision)], success: [put(key, encodeVolumeType(next))], failure: [] }),
      );
      if (write.succeeded) return { ok: true, type: next };
    }
    throw fromEtcdError(new Error(`volume type ${id} kept changing`), 'changing a volume type');
  }

  async delete(id: string): Promise<boolean> {
    const type = await this.get(id);
    if (!type) return false;
    const { keys } = this.options;
    const res = await this.call('deleting a volume type', () =>
      this.options.client.kv.txn({ compare: [], success: [del(keys.volumeType(id)), del(keys.volumeTypeName(type.name))], failure: [] }),
    );
    return res.succeeded;
  }

  async close(): Promise<void> {
    // The client belongs to the composition root.
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw fromEtcdError(err, what);
    }
  }
}
