/**
 * Volume types (Cinder's `volume_types` and their `extra_specs`): the VolumeTypeStore port and
 * its records. hearth needs just enough of them for multiattach — Cinder takes a volume's
 * `multiattach` from its type's extra spec `multiattach="<is> True"` and refuses the field on
 * create — and for cinderclient's `type-*` commands.
 *
 * The default type `__DEFAULT__` is built in (Cinder creates it in its first migration): it is
 * never stored, listed first, and cannot be deleted or changed (docs/operations.md).
 *
 * Adapters: `EtcdVolumeTypeStore` (`volume_types/<id>` and a name index
 * `volume_type_names/<name>`, written in one transaction) and `SqliteVolumeTypeStore` (a table
 * beside the single node's state). Types are few: listing reads them all.
 *
 * Failure semantics: every call may fail with a retryable `BackendUnavailableError`; a refused
 * condition (a name taken, a type changed meanwhile) is a value, never an exception.
 */

/** The stored format of a volume type record (`v`), for a later change of its shape. */
export const VOLUME_TYPE_FORMAT = 1;

/** Cinder's name of the default type. */
export const DEFAULT_VOLUME_TYPE = '__DEFAULT__';

/** The stable id hearth reports for `__DEFAULT__`. */
export const DEFAULT_VOLUME_TYPE_ID = '3d7d2a34-2a8f-5d0e-9a0a-5f1c7b0e4c11';

/** The extra spec that makes a type's volumes multiattach, and Cinder's value for "yes". */
export const MULTIATTACH_SPEC = 'multiattach';
export const MULTIATTACH_TRUE = '<is> True';

/** One volume type. Times are epoch ms. */
export interface VolumeType {
  /** A UUID. */
  readonly id: string;
  /** Unique among types. */
  readonly name: string;
  readonly description: string | null;
  readonly isPublic: boolean;
  readonly extraSpecs: Readonly<Record<string, string>>;
  readonly createdAt: number;
}

/** The built-in default type. */
export const DEFAULT_TYPE: VolumeType = {
  id: DEFAULT_VOLUME_TYPE_ID,
  name: DEFAULT_VOLUME_TYPE,
  description: 'Default Volume Type',
  isPublic: true,
  extraSpecs: {},
  createdAt: 0,
};

/** True when volumes of the type may be attached more than once at a time (Cinder's rule). */
export function isMultiattach(type: Pick<VolumeType, 'extraSpecs'>): boolean {
  return type.extraSpecs[MULTIATTACH_SPEC] === MULTIATTACH_TRUE;
}

/** A change of a type's extra specs: set some keys, or remove one. */
export type SpecChange = { readonly set: Readonly<Record<string, string>> } | { readonly unset: string };

/** The outcome of a conditional write. */
export type TypeWriteResult = { readonly ok: true; readonly type: VolumeType } | { readonly ok: false; readonly reason: 'name-taken' | 'not-found' };

/** See the module doc. */
export interface VolumeTypeStore {
  /** Creates a type whose name no other type has. */
  create(type: VolumeType): Promise<TypeWriteResult>;
  get(id: string): Promise<VolumeType | undefined>;
  getByName(name: string): Promise<VolumeType | undefined>;
  /** Every stored type (not the built-in default), by name. */
  list(): Promise<VolumeType[]>;
  /** Changes the extra specs of a type as it is now (retried against concurrent changes). */
  changeSpecs(id: string, change: SpecChange): Promise<TypeWriteResult>;
  /** Removes a type; false when it did not exist. */
  delete(id: string): Promise<boolean>;
  /** Idempotent. */
  close(): Promise<void>;
}

/** A stored type in its stored form. */
export function encodeVolumeType(type: VolumeType): string {
  return JSON.stringify({ v: VOLUME_TYPE_FORMAT, ...type });
}

/** A stored type, or undefined when the text is not one (it is then left alone, not shown). */
export function decodeVolumeType(text: string): VolumeType | undefined {
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    if (body.v !== VOLUME_TYPE_FORMAT || typeof body.id !== 'string' || typeof body.name !== 'string') return undefined;
    const specs = typeof body.extraSpecs === 'object' && body.extraSpecs !== null ? (body.extraSpecs as Record<string, string>) : {};
    return {
      id: body.id,
      name: body.name,
      description: typeof body.description === 'string' ? body.description : null,
      isPublic: body.isPublic !== false,
      extraSpecs: specs,
      createdAt: typeof body.createdAt === 'number' ? body.createdAt : 0,
    };
  } catch {
    return undefined;
  }
}

/** The extra specs after `change`. */
export function applySpecChange(specs: Readonly<Record<string, string>>, change: SpecChange): Record<string, string> {
  if ('set' in change) return { ...specs, ...change.set };
  const { [change.unset]: _removed, ...rest } = specs;
  return rest;
}

/** Sorts types by name, the built-in default first (what `type-list` shows). */
export function byName(types: readonly VolumeType[]): VolumeType[] {
  return [...types].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
