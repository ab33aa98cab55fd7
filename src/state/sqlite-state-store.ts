import Database, { type Database as Db, type Statement } from 'better-sqlite3';
import { BackendUnavailableError, ClosedError, CoordinatorError, FencedError, messageOf } from '../errors.js';
import { type Fence, NO_FENCE } from '../fence.js';
import type { Clock } from '../lifecycle/clock.js';
import { type ListPlan, markerNotFound, planList } from './list-plan.js';
import { matchesOpFilter, sortOps } from './listing.js';
import { measured, type StateMetrics } from './metrics.js';
import { needsChildren, needsHolds, type Observed, type Plan, planCreate, planOpUpdate, planRemove, planTransition, type Write } from './plan.js';
import type { OpRecord, RecordOf, ResourceRecord, ResourceRef, ResourceType, Unrevisioned } from './records.js';
import { migrateRecordSchema, nameKeyOf, prepareDatabase, type RecordSchemaOutcome } from './sqlite-schema.js';
import { RecordVersions } from './record-versions.js';
import { PROTOCOL } from '../protocol.js';
import type {
  CreateRequest,
  ListQuery,
  OpFilter,
  OpUpdateRequest,
  OpUpdateResult,
  Page,
  RemoveRequest,
  StateStore,
  StoredOp,
  TransitionRequest,
  TransitionResult,
} from './state-store.js';

/** Options of {@link SqliteStateStore.open}. */
export interface SqliteStateStoreOptions {
  /** The database file, e.g. `<dataDir>/state.sqlite`. */
  readonly path: string;
  readonly clock: Clock;
  readonly metrics: StateMetrics;
  /** How long a write waits for another process's write lock before it fails. */
  readonly busyTimeoutMs?: number;
}

interface Row {
  readonly version: number;
  readonly body: string;
  readonly type?: string;
  readonly id?: string;
}

/** File name of the store under `dataDir`. */
export const SQLITE_STATE_FILE = 'state.sqlite';

/**
 * The single-node StateStore on one SQLite file (better-sqlite3, WAL).
 *
 * Each write is one `BEGIN IMMEDIATE` transaction: read the record and its op, decide (the same
 * pure planner as etcd), check the fence's `holds()`, then `UPDATE … WHERE version = seen`. All
 * of it runs synchronously, so nothing — in this process or another one on the same file —
 * interleaves between check and write. Fences on a single node are their `holds()` predicate;
 * etcd key guards cannot be evaluated here and are refused.
 *
 * Failure semantics: there is no network. A second process holding the write lock makes a
 * write wait up to `busyTimeoutMs`, then fail with a retryable `BACKEND_UNAVAILABLE` (nothing
 * written). A full or unwritable disk fails the same way; the transaction rolls back, so a
 * write is either wholly there or not at all, also across a crash (WAL, `synchronous=FULL`).
 */
export class SqliteStateStore implements StateStore {
  readonly backend = 'sqlite' as const;
  /** Prepared statements by SQL, each with its `hearth_sqlite_statements_total` child (counted per run). */
  private readonly statements = new Map<string, { readonly stmt: Statement; readonly count: () => void }>();
  private readonly transactionCounts: { readonly begin: () => void; readonly commit: () => void; readonly rollback: () => void };
  /** One transaction wrapper for every write (building one per call costs more than the write). */
  private readonly inTransaction: { immediate: <T>(fn: () => T) => T };
  private closed = false;

  /** The record codec, at the newest schema this build reads (the file is migrated on open). */
  private readonly versions: RecordVersions;

  private constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly metrics: StateMetrics,
    /** What opening did to the records: their schema, and a migration with its backup. */
    readonly recordSchema: RecordSchemaOutcome,
  ) {
    this.versions = new RecordVersions(PROTOCOL.schema, recordSchema.schema);
    this.inTransaction = db.transaction(<T>(fn: () => T): T => fn()) as unknown as { immediate: <T>(fn: () => T) => T };
    this.transactionCounts = { begin: this.counter('begin'), commit: this.counter('commit'), rollback: this.counter('rollback') };
  }

  /**
   * Opens (creating if needed) the store file, and brings its records to the newest schema this
   * build reads, after a consistent backup (see `migrateRecordSchema`).
   *
   * @throws BackendUnavailableError when the file cannot be opened or prepared;
   *   ProtocolMismatchError when its records are of a schema this build cannot read.
   */
  static open(options: SqliteStateStoreOptions): SqliteStateStore {
    let db: Db | undefined;
    try {
      db = new Database(options.path);
      prepareDatabase(db, options.busyTimeoutMs ?? 5_000);
      const schema = migrateRecordSchema(db, options.path, PROTOCOL.schema, options.clock.now());
      return new SqliteStateStore(db, options.clock, options.metrics, schema);
    } catch (err) {
      db?.close();
      throw fromSqliteError(err, `opening the state store ${options.path}`);
    }
  }

  create<T extends ResourceType>(type: T, request: CreateRequest<RecordOf<T>>): Promise<TransitionResult<RecordOf<T>>> {
    const ref = { type, id: request.record.id };
    return this.write(ref, request.fence, () => {
      const parent = request.parent ? this.readRecord(request.parent.ref) : undefined;
      const plan = planCreate(ref, this.observe<RecordOf<T>>(ref, false), request, this.clock.now(), parent);
      const parentRef = request.parent?.touch === false ? undefined : request.parent?.ref;
      return this.commitPlan(ref, plan, request.fence, parentRef && ((revision) => this.touch(parentRef, revision)));
    });
  }

  transition<T extends ResourceType>(
    ref: { readonly type: T; readonly id: string },
    request: TransitionRequest<RecordOf<T>>,
  ): Promise<TransitionResult<RecordOf<T>>> {
    return this.write(ref, request.fence, () => {
      const observed = this.observe<RecordOf<T>>(ref, needsChildren(ref.type, request.expect), needsHolds(request.expect));
      return this.commitPlan(ref, planTransition(ref, observed, request, this.clock.now()), request.fence, undefined, observed);
    });
  }

  remove<T extends ResourceType>(ref: { readonly type: T; readonly id: string }, request: RemoveRequest): Promise<TransitionResult<RecordOf<T>>> {
    return this.write(ref, request.fence, () => {
      const observed = this.observe<RecordOf<T>>(ref, needsChildren(ref.type, request.expect), needsHolds(request.expect));
      return this.commitPlan(ref, planRemove(ref, observed, request), request.fence, undefined, observed);
    });
  }

  updateOp(ref: ResourceRef, request: OpUpdateRequest): Promise<OpUpdateResult> {
    // `assume` is an etcd store's token: here the op is read inside the transaction anyway.
    return this.write(ref, request.fence, (): OpUpdateResult => {
      // With the record, one statement reads both (writing the op leaves the record as it was).
      const observed = request.withRecord ? this.observe(ref, false) : undefined;
      const plan = planOpUpdate(observed ? observed.op : this.readOp(ref), request, this.clock.now());
      if ('failed' in plan) return { ok: false, failed: plan.failed };
      checkFence(request.fence);
      const revision = this.nextRevision();
      this.putOp(plan.op, revision);
      const op = { ...plan.op, revision: String(revision) };
      return observed ? { ok: true, revision: String(revision), op, record: observed.record ?? null } : { ok: true, revision: String(revision), op };
    });
  }

  async markPublished(ops: readonly OpRecord[], publishedAt: number): Promise<number> {
    if (this.closed) throw new ClosedError('state store');
    if (ops.length === 0) return 0;
    try {
      return this.transaction(() => {
        // One new version for the batch, as one etcd txn has one revision — and none when no op
        // was left to stamp (they all ended meanwhile): a no-op writes nothing, revision included.
        const revision = (this.statement("SELECT value + 1 AS next FROM meta WHERE key = 'revision'").get() as { next: number }).next;
        const stamp = "UPDATE ops SET version = ?, published_at = ?, body = json_set(body, '$.publishedAt', ?, '$.updatedAt', ?) WHERE type = ? AND id = ? AND version = ?";
        let stamped = 0;
        for (const op of ops) stamped += this.statement(stamp).run(revision, publishedAt, publishedAt, publishedAt, op.type, op.id, Number(op.revision)).changes;
        if (stamped > 0) this.nextRevision();
        return stamped;
      });
    } catch (err) {
      throw fromSqliteError(err, 'stamping published ops');
    }
  }

  opOfStored(stored: StoredOp): OpRecord | undefined {
    const m = STORED.exec(stored);
    if (!m) return undefined;
    try {
      return this.decode<OpRecord>({ version: Number(m[1]), body: stored.slice(m[0].length) }, 'an op carried by a job');
    } catch {
      return undefined;
    }
  }

  get<T extends ResourceType>(ref: { readonly type: T; readonly id: string }): Promise<RecordOf<T> | undefined> {
    return this.read(() => this.readRecord(ref) as RecordOf<T> | undefined);
  }

  list<T extends ResourceType>(type: T, query: ListQuery = {}): Promise<Page<RecordOf<T>>> {
    return this.read(() => {
      const plan = planList(query);
      const filters = filtersOf(type, plan);
      const where = [...filters.where];
      const args = [...filters.args];
      const columns = plan.order.by === 'name' ? ['name_key', 'created_at', 'id'] : ['created_at', 'id'];
      if (plan.marker !== undefined) {
        const marker = this.readRecord({ type, id: plan.marker });
        if (!marker || (plan.projectId !== undefined && marker.project_id !== plan.projectId)) throw markerNotFound(plan.marker);
        // Keyset pagination: the page continues after the marker's position in the order.
        where.push(`(${columns.join(', ')}) ${plan.order.dir === 'asc' ? '>' : '<'} (${columns.map(() => '?').join(', ')})`);
        args.push(...(plan.order.by === 'name' ? [nameKeyOf(marker.name)] : []), marker.created_at, marker.id);
      }
      const order = columns.map((c) => `${c} ${plan.order.dir === 'asc' ? 'ASC' : 'DESC'}`).join(', ');
      const sql = `SELECT type, id, version, body FROM resources WHERE ${where.join(' AND ')} ORDER BY ${order} LIMIT ?`;
      const rows = this.statement(sql).all(...args, plan.limit + 1) as Row[];
      const items = rows.slice(0, plan.limit).map((r) => this.decode<RecordOf<T>>(r, `resources/${r.type}/${r.id}`));
      if (!plan.withCount) return { items, more: rows.length > plan.limit };
      const count = this.statement(`SELECT COUNT(*) AS n FROM resources WHERE ${filters.where.join(' AND ')}`).get(...filters.args) as { n: number };
      return { items, more: rows.length > plan.limit, total: count.n };
    });
  }

  getOp(ref: ResourceRef): Promise<OpRecord | undefined> {
    return this.read(() => this.readOp(ref));
  }

  listOps(filter: OpFilter = {}): Promise<OpRecord[]> {
    return this.read(() => {
      const where: string[] = [];
      const args: unknown[] = [];
      for (const [column, value] of [['type', filter.type], ['cluster', filter.cluster], ['owner_host', filter.ownerHost]] as const) {
        if (value === undefined) continue;
        where.push(`${column} = ?`);
        args.push(value);
      }
      const sql = `SELECT type, id, version, body FROM ops${where.length ? ` WHERE ${where.join(' AND ')}` : ''}`;
      const ops = (this.statement(sql).all(...args) as Row[]).map((r) => this.decode<OpRecord>(r, `ops/${r.type}/${r.id}`));
      return sortOps(ops.filter((op) => matchesOpFilter(op, filter)));
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  /** The prepared statement of `sql`, counted as run: every caller runs what it asks for, once. */
  private statement(sql: string): Statement {
    let entry = this.statements.get(sql);
    if (!entry) {
      entry = { stmt: this.db.prepare(sql), count: this.counter(/^\s*(\w+)/.exec(sql)?.[1]?.toLowerCase() ?? 'other') };
      this.statements.set(sql, entry);
    }
    entry.count();
    return entry.stmt;
  }

  /** An increment of `hearth_sqlite_statements_total{kind}`, its label resolved once. */
  private counter(kind: string): () => void {
    const child = this.metrics.sqliteStatements.labels(kind);
    return () => child.inc();
  }

  /** Runs `fn` in one IMMEDIATE transaction (the file's write lock): BEGIN and COMMIT, or ROLLBACK when it throws. */
  private transaction<T>(fn: () => T): T {
    this.transactionCounts.begin();
    try {
      const result = this.inTransaction.immediate(fn);
      this.transactionCounts.commit();
      return result;
    } catch (err) {
      this.transactionCounts.rollback();
      throw err;
    }
  }

  private async read<T>(fn: () => T): Promise<T> {
    if (this.closed) throw new ClosedError('state store');
    try {
      return fn();
    } catch (err) {
      throw fromSqliteError(err, 'reading the state store');
    }
  }

  /** Runs `fn` in one IMMEDIATE transaction (the file's write lock), measured. */
  private write<T extends { ok: boolean }>(ref: ResourceRef, fence: Fence | undefined, fn: () => T): Promise<T> {
    return measured(this.metrics, 'sqlite', ref.type, async () => {
      if (this.closed) throw new ClosedError('state store');
      if (fence && fence.guards.length > 0) {
        throw new CoordinatorError('UNSUPPORTED', `the SQLite state store cannot check etcd key guards (${fence.description}); a single-node fence is its holds() predicate`);
      }
      try {
        return this.transaction(fn);
      } catch (err) {
        throw fromSqliteError(err, `writing ${ref.type} ${ref.id}`);
      }
    });
  }

  /**
   * The record, its op and — when the plan needs them — its snapshot count and source holds, in
   * one statement: a constant row left-joined to both primary keys, the counts as subqueries.
   */
  private observe<R extends ResourceRecord>(ref: ResourceRef, withChildren: boolean, withHolds = false): Observed<R> {
    const args: unknown[] = [];
    if (withChildren) args.push(ref.id);
    // A holding volume is in creating or deleting (plan.ts keeps source_held so): the status index narrows the scan to those.
    if (withHolds) args.push(ref.type === 'volume' ? '$.source_volid' : '$.snapshot_id', ref.id);
    const row = this.statement(observeSql(withChildren, withHolds)).get(...args, ref.type, ref.id, ref.type, ref.id) as ObservedRow;
    const record = row.rv === null ? undefined : this.decode<R>({ version: row.rv, body: row.rb as string }, `resources/${ref.type}/${ref.id}`);
    const op = row.ov === null ? undefined : this.decode<OpRecord>({ version: row.ov, body: row.ob as string }, `ops/${ref.type}/${ref.id}`);
    return { record, op, ...(row.children === undefined ? {} : { children: row.children }), ...(row.holds === undefined ? {} : { holds: row.holds }) };
  }

  private readRecord(ref: ResourceRef): ResourceRecord | undefined {
    const row = this.statement('SELECT version, body FROM resources WHERE type = ? AND id = ?').get(ref.type, ref.id) as Row | undefined;
    return row && this.decode<ResourceRecord>(row, `resources/${ref.type}/${ref.id}`);
  }

  private readOp(ref: ResourceRef): OpRecord | undefined {
    const row = this.statement('SELECT version, body FROM ops WHERE type = ? AND id = ?').get(ref.type, ref.id) as Row | undefined;
    return row && this.decode<OpRecord>(row, `ops/${ref.type}/${ref.id}`);
  }

  /** A row's record, decoded by the record codec; `where` names it in an error. */
  private decode<T>(row: Row, where: string): T {
    return { ...this.versions.decode<object>(row.body, `${where} (version ${row.version})`), revision: String(row.version) } as T;
  }

  private nextRevision(): number {
    const row = this.statement("UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value").get() as { value: number };
    return row.value;
  }

  private commitPlan<R extends ResourceRecord>(
    ref: ResourceRef,
    plan: Plan<R>,
    fence: Fence | undefined,
    alsoWrite?: (revision: number) => void,
    observed?: Observed<R>,
  ): TransitionResult<R> {
    if ('failed' in plan) return { ok: false, failed: plan.failed };
    checkFence(fence);
    const revision = this.nextRevision();
    const opJson = this.applyWrite(ref, plan.write, revision, observed?.record);
    alsoWrite?.(revision);
    const rev = String(revision);
    const record = plan.write.record === null ? (observed?.record as R) : ({ ...plan.write.record, revision: rev } as R);
    const op = plan.write.op === 'keep' ? (observed?.op ?? null) : plan.write.op && { ...plan.write.op, revision: rev };
    return opJson === undefined ? { ok: true, revision: rev, record, op } : { ok: true, revision: rev, record, op, stored: encodeStoredOp(revision, opJson) };
  }

  /** Applies a planned write; returns the JSON of the op when it wrote one. */
  private applyWrite<R extends ResourceRecord>(ref: ResourceRef, write: Write<R>, revision: number, before: R | undefined): string | undefined {
    const r = write.record as Unrevisioned<ResourceRecord> | null;
    if (r === null) {
      this.statement('DELETE FROM resources WHERE type = ? AND id = ?').run(ref.type, ref.id);
    } else if (before === undefined) {
      this.statement('INSERT INTO resources (type, id, version, status, project_id, cluster, name, volume_id, created_at, name_key, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
        ref.type, ref.id, revision, r.status, r.project_id, r.cluster, r.name, 'volume_id' in r ? r.volume_id : null, r.created_at, nameKeyOf(r.name), this.versions.encode(r),
      );
    } else {
      // Only columns that changed are set, so unchanged indexes are not rewritten.
      // The listing indexes are kept by the same statement (name_key follows name).
      const changed = (['status', 'cluster', 'name'] as const).filter((c) => r[c] !== before[c]);
      const sets = ['version = ?', 'body = ?', ...changed.map((c) => `${c} = ?`), ...(changed.includes('name') ? ['name_key = ?'] : [])].join(', ');
      const values = [...changed.map((c) => r[c]), ...(changed.includes('name') ? [nameKeyOf(r.name)] : [])];
      this.statement(`UPDATE resources SET ${sets} WHERE type = ? AND id = ?`).run(revision, this.versions.encode(r), ...values, ref.type, ref.id);
    }
    if (write.op === null) this.statement('DELETE FROM ops WHERE type = ? AND id = ?').run(ref.type, ref.id);
    else if (write.op !== 'keep') return this.putOp(write.op, revision);
    return undefined;
  }

  /** Writes the op; returns its JSON (encoded once, also for the `stored` token). */
  private putOp(op: Unrevisioned<OpRecord>, revision: number): string {
    const json = this.versions.encode(op);
    this.statement(
      `INSERT INTO ops (type, id, version, cluster, owner_host, owner_incarnation, published_at, created_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (type, id) DO UPDATE SET version = excluded.version, cluster = excluded.cluster, owner_host = excluded.owner_host,
         owner_incarnation = excluded.owner_incarnation, published_at = excluded.published_at, created_at = excluded.created_at, body = excluded.body`,
    ).run(op.type, op.id, revision, op.cluster, op.owner?.host ?? null, op.owner?.incarnation ?? null, op.publishedAt, op.createdAt, json);
    return json;
  }

  /** Bumps a parent's version, as etcd bumps its mod revision (see CreateRequest.parent). */
  private touch(ref: ResourceRef, revision: number): void {
    this.statement('UPDATE resources SET version = ? WHERE type = ? AND id = ?').run(revision, ref.type, ref.id);
  }
}

/** The WHERE terms of a plan's filters (each served by a listing index: sqlite-schema.ts). */
function filtersOf(type: ResourceType, plan: ListPlan): { where: string[]; args: unknown[] } {
  const where = ['type = ?'];
  const args: unknown[] = [type];
  const terms: [string, unknown][] = [
    ['project_id', plan.projectId],
    ['status', plan.status],
    ['name_key', plan.name === undefined ? undefined : nameKeyOf(plan.name)],
    ['volume_id', plan.volumeId],
  ];
  for (const [column, value] of terms) {
    if (value === undefined) continue;
    where.push(`${column} = ?`);
    args.push(value);
  }
  return { where, args };
}

/** What {@link observeSql} selects: `rv`/`rb` the record's version and body, `ov`/`ob` the op's (null when absent). */
interface ObservedRow {
  readonly rv: number | null;
  readonly rb: string | null;
  readonly ov: number | null;
  readonly ob: string | null;
  readonly children?: number;
  readonly holds?: number;
}

/** The SQL of one observation (four variants, each prepared once); parameters: the counts' (if any), then type, id, type, id. */
function observeSql(withChildren: boolean, withHolds: boolean): string {
  const counts = [
    ...(withChildren ? ["(SELECT COUNT(*) FROM resources c WHERE c.type = 'snapshot' AND c.volume_id = ?) AS children"] : []),
    ...(withHolds
      ? ["(SELECT COUNT(*) FROM resources h WHERE h.type = 'volume' AND h.status IN ('creating', 'deleting') AND json_extract(h.body, '$.source_held') = 1 AND json_extract(h.body, ?) = ?) AS holds"]
      : []),
  ];
  return `SELECT r.version AS rv, r.body AS rb, o.version AS ov, o.body AS ob${counts.map((c) => `, ${c}`).join('')}
    FROM (SELECT 1) LEFT JOIN resources r ON r.type = ? AND r.id = ? LEFT JOIN ops o ON o.type = ? AND o.id = ?`;
}

const STORED = /^s1:(\d+):/;

/** An op as a {@link StoredOp}: `s1:<version>:<json>`. The claim reads the op in its transaction anyway; the token spares the read before it. */
function encodeStoredOp(version: number, json: string): StoredOp {
  return `s1:${version}:${json}` as StoredOp;
}

/** Checks a single-node fence synchronously, inside the transaction that writes. */
function checkFence(fence: Fence | undefined): void {
  const f = fence ?? NO_FENCE;
  if (!f.holds()) throw new FencedError('holds()', f.description);
}

/** Translates a better-sqlite3 error; locks, I/O and a full disk are retryable. */
export function fromSqliteError(err: unknown, what: string): CoordinatorError {
  if (err instanceof CoordinatorError) return err;
  const code = typeof err === 'object' && err !== null && 'code' in err ? String((err).code) : '';
  if (/^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|PROTOCOL)/.test(code)) {
    return new BackendUnavailableError('sqlite', `${what}: ${messageOf(err)} (${code})`, { cause: err });
  }
  return new CoordinatorError('INTERNAL', `${what}: ${messageOf(err)}`, { cause: err });
}
