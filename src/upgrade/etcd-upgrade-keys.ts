import type { IKeyValue } from 'etcd3';
import type { KeyLayout } from '../etcd/keys.js';
import type { Logger } from '../observability/logger.js';
import { decodePresence, decodeSchemaState, type LiveProcess, type SchemaState } from './records.js';
import type { UpgradeSnapshot } from './registry.js';

/** What one key under `upgrade/` is. */
export type UpgradeKey = { readonly kind: 'process'; readonly id: string } | { readonly kind: 'schema' } | { readonly kind: 'other' };

/** Classifies a key under `upgrade/`. */
export function upgradeKeyOf(keys: KeyLayout, key: string): UpgradeKey {
  if (key === keys.upgradeSchema()) return { kind: 'schema' };
  const processes = keys.upgradeProcesses();
  if (key.startsWith(processes)) return { kind: 'process', id: key.slice(processes.length) };
  return { kind: 'other' };
}

/** A presence key-value as a live process; undefined (logged) when it cannot be read. */
export function processOf(keys: KeyLayout, kv: IKeyValue, logger: Logger): LiveProcess | undefined {
  const key = kv.key.toString();
  const what = upgradeKeyOf(keys, key);
  if (what.kind !== 'process') return undefined;
  try {
    return { ...decodePresence(kv.value.toString(), key), id: what.id, since: kv.create_revision };
  } catch (err) {
    logger.warn({ err, key }, 'ignoring a presence record this build cannot read');
    return undefined;
  }
}

/** The schema key-value as a schema state; undefined (logged) when it cannot be read. */
export function schemaOf(key: string, kv: IKeyValue, logger: Logger): SchemaState | undefined {
  try {
    return decodeSchemaState(kv.value.toString(), key, kv.mod_revision);
  } catch (err) {
    logger.error({ err, key }, 'the record schema key cannot be read');
    return undefined;
  }
}

/** Everything listed under `upgrade/` at `revision`, as a snapshot. */
export function decodeUpgradeKeys(keys: KeyLayout, kvs: readonly IKeyValue[], revision: string, logger: Logger): UpgradeSnapshot {
  const processes: LiveProcess[] = [];
  let schema: SchemaState | undefined;
  for (const kv of kvs) {
    const key = kv.key.toString();
    const what = upgradeKeyOf(keys, key);
    if (what.kind === 'schema') schema = schemaOf(key, kv, logger);
    else if (what.kind === 'process') {
      const p = processOf(keys, kv, logger);
      if (p) processes.push(p);
    }
  }
  return { processes, schema, revision };
}
