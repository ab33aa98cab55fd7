import { randomUUID } from 'node:crypto';
import { InvalidInputError, NotFoundError } from '../errors.js';
import { previewText } from '../preview.js';
import type { StateStore } from '../state/state-store.js';
import { DEFAULT_TYPE, DEFAULT_VOLUME_TYPE, isMultiattach, type SpecChange, type VolumeType, type VolumeTypeStore } from '../volume-types/volume-type-store.js';
import { everyVolume } from './volume-scan.js';

/** A new type as `type-create` describes it. */
export interface CreateTypeInput {
  readonly name: string;
  readonly description?: string | null;
  readonly isPublic?: boolean;
}

/** What a new volume takes from its type. */
export interface ResolvedType {
  readonly name: string;
  readonly id: string;
  readonly multiattach: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Cinder's volume-type API as far as hearth needs it (type-create, type-list, type-show,
 * type-delete, type-key set/unset, the default type) and the resolution of a volume's type at
 * create. The default type is built in and immutable.
 *
 * Failure semantics: an unknown type is {@link NotFoundError} (Cinder's VolumeTypeNotFound,
 * 404); a taken name, a change of the default type, or the deletion of a type in use is
 * {@link InvalidInputError} (400), nothing written. Store errors pass through.
 */
export class VolumeTypeService {
  constructor(private readonly o: { readonly types: VolumeTypeStore; readonly store: StateStore; readonly now: () => number }) {}

  async create(input: CreateTypeInput): Promise<VolumeType> {
    const name = input.name.trim();
    if (name === '' || name === DEFAULT_VOLUME_TYPE) throw new InvalidInputError(`Volume Type ${previewText(name)} already exists.`);
    const type: VolumeType = { id: randomUUID(), name, description: input.description ?? null, isPublic: input.isPublic ?? true, extraSpecs: {}, createdAt: this.o.now() };
    const result = await this.o.types.create(type);
    if (!result.ok) throw new InvalidInputError(`Volume Type ${previewText(name)} already exists.`);
    return result.type;
  }

  async list(): Promise<VolumeType[]> {
    return [DEFAULT_TYPE, ...(await this.o.types.list())];
  }

  /** By id (or `default`, as cinderclient's `type-default` asks); 404 otherwise. */
  async get(id: string): Promise<VolumeType> {
    if (id === DEFAULT_TYPE.id || id === 'default') return DEFAULT_TYPE;
    const type = UUID.test(id) ? await this.o.types.get(id) : undefined;
    if (!type) throw new NotFoundError('volume type', id, `Volume type ${previewText(id)} could not be found.`);
    return type;
  }

  /** By id or name, as Cinder resolves `create --volume-type`. */
  async resolve(nameOrId: string | null | undefined): Promise<ResolvedType> {
    const type = nameOrId === undefined || nameOrId === null || nameOrId === DEFAULT_VOLUME_TYPE || nameOrId === DEFAULT_TYPE.id ? DEFAULT_TYPE : await this.find(nameOrId);
    if (!type) throw new NotFoundError('volume type', nameOrId ?? '', `Volume type with name ${previewText(nameOrId ?? '')} could not be found.`);
    return { name: type.name, id: type.id, multiattach: isMultiattach(type) };
  }

  /**
   * Cinder's rule: a type volumes still use cannot go. The check reads the volumes first, so a
   * volume created with the type while it is deleted may outlive it (as in Cinder); that volume
   * keeps its type's name and multiattach flag in its own record.
   */
  async delete(id: string): Promise<void> {
    const type = await this.get(id);
    if (type.id === DEFAULT_TYPE.id) throw new InvalidInputError('Default volume type can not be deleted.');
    for await (const volume of everyVolume(this.o.store)) {
      if (volume.volume_type_id === type.id || volume.volume_type === type.name) {
        throw new InvalidInputError(`Target volume type is still in use. Volume Type ${type.id} deletion is not allowed with volumes present with the type.`);
      }
    }
    if (!(await this.o.types.delete(type.id))) throw new NotFoundError('volume type', id, `Volume type ${previewText(id)} could not be found.`);
  }

  async extraSpecs(id: string): Promise<Readonly<Record<string, string>>> {
    return (await this.get(id)).extraSpecs;
  }

  async changeSpecs(id: string, change: SpecChange): Promise<VolumeType> {
    const type = await this.get(id);
    if (type.id === DEFAULT_TYPE.id) {
      throw new InvalidInputError(`The default volume type ${DEFAULT_VOLUME_TYPE} is built into hearth and cannot be changed; create a type for its extra specs.`);
    }
    if ('unset' in change && !(change.unset in type.extraSpecs)) {
      throw new NotFoundError('extra spec', change.unset, `Volume Type ${type.id} has no extra specs with key ${previewText(change.unset)}.`);
    }
    const result = await this.o.types.changeSpecs(type.id, change);
    if (!result.ok) throw new NotFoundError('volume type', id, `Volume type ${previewText(id)} could not be found.`);
    return result.type;
  }

  private async find(nameOrId: string): Promise<VolumeType | undefined> {
    if (UUID.test(nameOrId)) {
      const byId = await this.o.types.get(nameOrId);
      if (byId) return byId;
    }
    return this.o.types.getByName(nameOrId);
  }
}
