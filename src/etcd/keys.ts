/**
 * hearth's etcd key layout, in one place. Every key lives under the configured prefix
 * (default `/hearth`):
 *
 * | key | value | lease |
 * |---|---|---|
 * | `clusters/<cluster>` | cluster record | none |
 * | `cluster-epochs/<cluster>` | the backend epoch in decimal; its etcd version is the epoch, which op writes compare | none |
 * | `services/<binary>/<host>` | service record | none |
 * | `alive/<host>` | incarnation, heartbeat | session |
 * | `locks/<name>/<leaseHex>` | empty | session — etcdctl lock's layout |
 * | `resources/<type>/<id>` | volume or snapshot record | none |
 * | `ops/<type>/<id>` | the in-flight operation | none |
 * | `index/volume-snapshots/<volume>/<snapshot>` | empty: a volume's snapshots, so a delete can count them | none |
 * | `index/source-holds/<type>/<source>/<volume>` | empty: a volume whose copy reads the source, so its delete can count them | none |
 * | `index/<type>/<order>/<scope>/<sortable>` | the resource's id: one listing order's entry (state/list-plan.ts), written with the record | none |
 * | `index/built/<type>` | the listing indexes' version, once every record written before them is indexed | none |
 * | `failovers/<dead incarnation>` | the incarnation that first took its work over | that taker's session |
 * | `incarnations/<incarnation>` | which process ran it (written by its join) | none |
 * | `fenced/<incarnation>` | how it ended for good: left cleanly, or fenced | none |
 * | `fences/<incarnation>` | the fence operation of a dead incarnation | none |
 * | `messages/<id>` | a user message (Cinder's messages API) until it expires | none |
 * | `volume_types/<id>`, `volume_type_names/<name>` | a volume type; its name's owner | none |
 * | `upgrade/schema` | the finalized record schema and its data migration | none |
 * | `upgrade/processes/<host>/<leaseHex>` | one live process: the versions it reads and writes | the process's presence lease |
 * | `upgrade/migrator` | the process running the data migration | that process's presence lease |
 */
export class KeyLayout {
  constructor(readonly prefix: string) {}

  cluster(cluster: string): string {
    return `${this.prefix}/clusters/${cluster}`;
  }
  clusters(): string {
    return `${this.prefix}/clusters/`;
  }
  /** Outside `clusters/`, whose every key is a cluster record. */
  clusterEpoch(cluster: string): string {
    return `${this.prefix}/cluster-epochs/${cluster}`;
  }
  service(binary: string, host: string): string {
    return `${this.prefix}/services/${binary}/${host}`;
  }
  services(binary?: string): string {
    return binary === undefined ? `${this.prefix}/services/` : `${this.prefix}/services/${binary}/`;
  }
  alive(host: string): string {
    return `${this.prefix}/alive/${host}`;
  }
  aliveAll(): string {
    return `${this.prefix}/alive/`;
  }
  /** The lock's prefix; waiters put `<prefix>/<leaseHex>` under it (no trailing slash here). */
  lock(name: string): string {
    return `${this.prefix}/locks/${name}`;
  }
  locks(): string {
    return `${this.prefix}/locks/`;
  }
  resource(type: string, id: string): string {
    return `${this.prefix}/resources/${type}/${id}`;
  }
  resources(type: string): string {
    return `${this.prefix}/resources/${type}/`;
  }
  op(type: string, id: string): string {
    return `${this.prefix}/ops/${type}/${id}`;
  }
  ops(type?: string): string {
    return type === undefined ? `${this.prefix}/ops/` : `${this.prefix}/ops/${type}/`;
  }
  /** The failover ledger's record of one dead incarnation (orphans/etcd-failover-ledger.ts). */
  failover(deadIncarnation: string): string {
    return `${this.prefix}/failovers/${deadIncarnation}`;
  }
  /** The durable record of one incarnation (membership). */
  incarnation(incarnation: string): string {
    return `${this.prefix}/incarnations/${incarnation}`;
  }
  incarnations(): string {
    return `${this.prefix}/incarnations/`;
  }
  /** How an incarnation ended for good: its clean leave, or its fence (membership). */
  fenced(incarnation: string): string {
    return `${this.prefix}/fenced/${incarnation}`;
  }
  fencedAll(): string {
    return `${this.prefix}/fenced/`;
  }
  /** The fence operation of a dead incarnation (fencing). */
  fence(incarnation: string): string {
    return `${this.prefix}/fences/${incarnation}`;
  }
  fences(): string {
    return `${this.prefix}/fences/`;
  }
  /** A user message (messages concern). */
  message(id: string): string {
    return `${this.prefix}/messages/${id}`;
  }
  messages(): string {
    return `${this.prefix}/messages/`;
  }
  /** Everything of the upgrade concern (one watch follows it all). */
  /** A volume type (volume-types concern). */
  volumeType(id: string): string {
    return `${this.prefix}/volume_types/${id}`;
  }
  volumeTypes(): string {
    return `${this.prefix}/volume_types/`;
  }
  /** A volume type's name → its id: the uniqueness of names. */
  volumeTypeName(name: string): string {
    return `${this.prefix}/volume_type_names/${encodeURIComponent(name)}`;
  }

  upgrade(): string {
    return `${this.prefix}/upgrade/`;
  }
  /** The cluster's finalized record schema (upgrade). */
  upgradeSchema(): string {
    return `${this.prefix}/upgrade/schema`;
  }
  /** One live process's presence (upgrade). */
  upgradeProcess(host: string, leaseHex: string): string {
    return `${this.prefix}/upgrade/processes/${host}/${leaseHex}`;
  }
  upgradeProcesses(): string {
    return `${this.prefix}/upgrade/processes/`;
  }
  /** Who runs the data migration (upgrade). */
  upgradeMigrator(): string {
    return `${this.prefix}/upgrade/migrator`;
  }
  /** One snapshot of a volume in the index a volume delete counts. */
  volumeSnapshot(volumeId: string, snapshotId: string): string {
    return `${this.prefix}/index/volume-snapshots/${volumeId}/${snapshotId}`;
  }
  volumeSnapshots(volumeId: string): string {
    return `${this.prefix}/index/volume-snapshots/${volumeId}/`;
  }
  /** One volume whose copy holds its source (a volume or a snapshot), in the index a delete of the source counts. */
  sourceHold(sourceType: string, sourceId: string, volumeId: string): string {
    return `${this.prefix}/index/source-holds/${sourceType}/${sourceId}/${volumeId}`;
  }
  sourceHolds(sourceType: string, sourceId: string): string {
    return `${this.prefix}/index/source-holds/${sourceType}/${sourceId}/`;
  }
  /** The entries of one listing index of a type, in one order and scope (segments from state/list-plan.ts). */
  listIndex(type: string, order: string, scope: string): string {
    return `${this.prefix}/index/${type}/${order}/${scope}/`;
  }
  /** Marks the listing indexes of a type as built for every record (the startup backfill). */
  listIndexBuilt(type: string): string {
    return `${this.prefix}/index/built/${type}`;
  }
}

/** The end of the range of every key starting with `prefix`. */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
