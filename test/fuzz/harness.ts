// The API fuzzer's harness: a real single-node daemon (`hearth serve`, fake driver), requests
// sent over real sockets, and the checks every answer must pass — never a 5xx; on a 4xx a
// Cinder fault body whose code is the status, and nothing written (the SQLite store's revision
// and the membership file unchanged); the daemon still answering. Used by the short run in
// `make test` (test/integration/api/fuzz.test.ts) and the long one (`make fuzz`, run.ts).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MAX_FAULT_MESSAGE_CHARS } from '../../src/api/faults.js';
import { SQLITE_STATE_FILE } from '../../src/state/sqlite-state-store.js';
import { type HearthProcess, startHearth } from '../support/hearth-process.js';
import { type FuzzRequest, resolvePlaceholders } from './requests.js';

/** Cinder's fault names by status (what the body's one key must be). */
const FAULT_NAMES: Readonly<Record<number, string>> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  409: 'conflictingRequest',
  413: 'overLimit',
  415: 'badMediaType',
};

/** What a run did, for the report in docs/security.md. */
export interface FuzzStats {
  requests: number;
  byStatus: Record<string, number>;
  byRoute: Record<string, Record<string, number>>;
  /** 4xx answers whose "nothing written" check ran (the store was quiet before the request). */
  revisionChecks: number;
  /** Requests Node's client would not send (a path or header it refuses to write). */
  unsendable: number;
  longestFaultMessage: number;
  elapsedMs: number;
}

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** Thrown when an answer breaks a rule; says which, with the request. */
export class FuzzViolation extends Error {}

/** See the module doc. */
export class ApiFuzzer {
  readonly stats: FuzzStats = { requests: 0, byStatus: {}, byRoute: {}, revisionChecks: 0, unsendable: 0, longestFaultMessage: 0, elapsedMs: 0 };
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1 });
  private readonly db: Database.Database;
  private readonly pool: { volumes: string[]; snapshots: string[] } = { volumes: [], snapshots: [] };
  private readonly started = performance.now();
  /** True after a request that may have started work, until the worker is seen idle again. */
  private dirty = false;
  /** The last wait for idleness timed out (an operation that does not finish): wait briefly from then on. */
  private stuck = false;

  private constructor(
    readonly hearth: HearthProcess,
    readonly port: number,
  ) {
    this.db = new Database(join(hearth.dataDir, SQLITE_STATE_FILE), { readonly: true, fileMustExist: true });
  }

  /** Starts the daemon (info-level logs: a debug line per refused request would fill the disk on long runs). */
  static async start(): Promise<ApiFuzzer> {
    const hearth = await startHearth({ name: 'fuzz', env: { HEARTH_DRIVER_NAME: 'fake', HEARTH_LOG_LEVEL: 'info' } });
    const fuzzer = new ApiFuzzer(hearth, Number(new URL(hearth.apiUrl).port));
    // A few resources to act on; the fuzzer adds those its own requests create.
    for (let i = 0; i < 3; i++) {
      const created = await fuzzer.send({ route: 'seed', method: 'POST', path: '/v3/admin/volumes', headers: fuzzer.goodHeaders(), body: '{"volume":{"size":1}}', pick: 0 });
      if (created.status !== 202) throw new Error(`seeding a volume failed: ${created.status} ${created.body}`);
    }
    await fuzzer.untilIdle();
    const snap = await fuzzer.send({ route: 'seed', method: 'POST', path: '/v3/admin/snapshots', headers: fuzzer.goodHeaders(), body: `{"snapshot":{"volume_id":"${fuzzer.pool.volumes[0] ?? ''}"}}`, pick: 0 });
    if (snap.status !== 202) throw new Error(`seeding a snapshot failed: ${snap.status} ${snap.body}`);
    await fuzzer.untilIdle();
    fuzzer.stats.requests = 0;
    fuzzer.stats.byStatus = {};
    fuzzer.stats.byRoute = {};
    return fuzzer;
  }

  private goodHeaders(): Record<string, string> {
    return { host: `127.0.0.1:${this.port}`, 'content-type': 'application/json', 'x-auth-token': 'admin:admin' };
  }

  /** Sends one generated request and checks its answer; throws {@link FuzzViolation} on a broken rule. */
  async check(req: FuzzRequest): Promise<boolean> {
    if (this.dirty) this.dirty = !(await this.untilIdle());
    // The "nothing written" check needs a store nobody else writes to: skipped while work is pending.
    const before = this.dirty ? undefined : await this.fingerprint();
    const answer = await this.send(req);
    if (answer.status === -1) return true;
    const where = `${req.method} ${req.path.slice(0, 200)} ${JSON.stringify(req.headers).slice(0, 300)} body=${JSON.stringify((req.body ?? '').slice(0, 200))}`;
    if (answer.status >= 500) throw new FuzzViolation(`5xx: ${answer.status} ${answer.body.slice(0, 300)} for ${where}`);
    if (answer.status >= 400) {
      if (req.method !== 'HEAD') this.checkFault(answer, where);
      if (before !== undefined) {
        const after = await this.fingerprint();
        if (after !== before) throw new FuzzViolation(`a ${answer.status} wrote to the store (${before} → ${after}) for ${where}`);
        this.stats.revisionChecks++;
      }
    } else if (req.method !== 'GET' && req.method !== 'HEAD') {
      this.dirty = true;
    }
    if (this.stats.requests % 100 === 0) await this.checkAlive();
    return true;
  }

  private checkFault(answer: Answer, where: string): void {
    let body: unknown;
    try {
      body = JSON.parse(answer.body);
    } catch {
      throw new FuzzViolation(`${answer.status} without a JSON body (${JSON.stringify(answer.body.slice(0, 200))}) for ${where}`);
    }
    const keys = typeof body === 'object' && body !== null ? Object.keys(body) : [];
    const fault = keys.length === 1 ? (body as Record<string, { code?: unknown; message?: unknown }>)[keys[0] as string] : undefined;
    const name = FAULT_NAMES[answer.status] ?? 'computeFault';
    if (keys[0] !== name || fault?.code !== answer.status || typeof fault.message !== 'string') {
      throw new FuzzViolation(`${answer.status} without Cinder's fault body (${answer.body.slice(0, 300)}) for ${where}`);
    }
    if (fault.message.length > MAX_FAULT_MESSAGE_CHARS) throw new FuzzViolation(`fault message of ${fault.message.length} characters for ${where}`);
    this.stats.longestFaultMessage = Math.max(this.stats.longestFaultMessage, fault.message.length);
  }

  /** Sends `req` (placeholders resolved); status -1 when Node's client refuses to send it. */
  async send(req: FuzzRequest): Promise<Answer> {
    const path = resolvePlaceholders(req.path, this.pool, req.pick);
    const body = req.body === undefined ? undefined : resolvePlaceholders(req.body, this.pool, req.pick);
    const headers: Record<string, string> = { ...req.headers };
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    let answer: Answer;
    try {
      answer = await this.exchange(req.method, path, headers, body);
    } catch (err) {
      if (err instanceof TypeError || (err as NodeJS.ErrnoException).code === 'ERR_UNESCAPED_CHARACTERS' || (err as NodeJS.ErrnoException).code === 'ERR_INVALID_CHAR') {
        this.stats.unsendable++;
        return { status: -1, headers: {}, body: '' };
      }
      throw new FuzzViolation(`no answer (${(err as Error).message}) for ${req.method} ${path.slice(0, 200)}`);
    }
    this.record(req.route, answer.status);
    this.remember(req, answer);
    return answer;
  }

  private exchange(method: string, path: string, headers: Record<string, string>, body: string | undefined): Promise<Answer> {
    return new Promise((resolve, reject) => {
      let answered = false;
      const r = request({ host: '127.0.0.1', port: this.port, method, path, headers, agent: this.agent, setHost: false, timeout: 15_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          answered = true;
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      });
      // The server may answer (413, 401) and close before the whole body was written: the answer counts.
      r.on('error', (err) => {
        if (!answered) reject(err);
      });
      r.on('timeout', () => r.destroy(new Error('no answer within 15 s')));
      r.end(body);
    });
  }

  private record(route: string, status: number): void {
    this.stats.requests++;
    this.stats.byStatus[status] = (this.stats.byStatus[status] ?? 0) + 1;
    const r = (this.stats.byRoute[route] ??= {});
    r[status] = (r[status] ?? 0) + 1;
  }

  /** Keeps the ids of created volumes and snapshots, so later requests act on real ones. */
  private remember(req: FuzzRequest, answer: Answer): void {
    if (answer.status !== 202 || req.method !== 'POST') return;
    try {
      const body = JSON.parse(answer.body) as { volume?: { id?: unknown }; snapshot?: { id?: unknown } };
      const add = (list: string[], id: unknown): void => {
        if (typeof id !== 'string') return;
        list.push(id);
        if (list.length > 20) list.shift();
      };
      add(this.pool.volumes, body.volume?.id);
      add(this.pool.snapshots, body.snapshot?.id);
    } catch {
      // Not a create: nothing to remember.
    }
  }

  /** The store's revision and op count, and the membership file's digest. */
  private async fingerprint(): Promise<string> {
    const rev = this.db.prepare("SELECT value FROM meta WHERE key = 'revision'").get() as { value: number };
    const ops = this.db.prepare('SELECT COUNT(*) AS n FROM ops').get() as { n: number };
    let membership: string;
    try {
      // Heartbeats rewrite the file every few seconds; what a request may change is the rest.
      const records = JSON.parse(await readFile(join(this.hearth.dataDir, 'membership.json'), 'utf8')) as { services?: Record<string, unknown>[] };
      for (const s of records.services ?? []) delete s.heartbeatAtMs;
      membership = createHash('sha256').update(JSON.stringify(records)).digest('hex').slice(0, 12);
    } catch {
      membership = 'none';
    }
    return `rev ${rev.value}, ops ${ops.n}, membership ${membership}`;
  }

  /**
   * Waits until the worker has finished what accepted requests started: no op records left, and
   * the fingerprint unchanged over three reads. True when it got there.
   */
  private async untilIdle(): Promise<boolean> {
    const deadline = Date.now() + (this.stuck ? 500 : 10_000);
    let last = '';
    let stable = 0;
    while (Date.now() < deadline) {
      const now = await this.fingerprint();
      stable = now === last && / ops 0,/.test(now) ? stable + 1 : 0;
      if (stable >= 3) {
        this.stuck = false;
        return true;
      }
      last = now;
      await new Promise((r) => setTimeout(r, 25));
    }
    this.stuck = true;
    return false;
  }

  private async checkAlive(): Promise<void> {
    const res = await fetch(`${this.hearth.opsUrl}/livez`, { signal: AbortSignal.timeout(5_000) });
    if (res.status !== 200) throw new FuzzViolation(`/livez answered ${res.status}`);
  }

  /**
   * The end of a run: the daemon still answers (API and probes) and logged no error — a request
   * that made it fail would have left a line at `error` with a stack.
   */
  async finish(): Promise<FuzzStats> {
    this.stats.elapsedMs = Math.round(performance.now() - this.started);
    await this.checkAlive();
    const root = await this.send({ route: 'final', method: 'GET', path: '/', headers: this.goodHeaders(), body: undefined, pick: 0 });
    if (root.status !== 300) throw new FuzzViolation(`GET / answered ${root.status} at the end`);
    const errors = this.hearth.logs().filter((l) => l.level === 'error' || l.level === 'fatal');
    if (errors.length > 0) throw new FuzzViolation(`the daemon logged ${errors.length} error(s), the first: ${JSON.stringify(errors[0]).slice(0, 600)}`);
    return this.stats;
  }

  async stop(): Promise<void> {
    this.agent.destroy();
    this.db.close();
    await this.hearth.stop();
  }
}
