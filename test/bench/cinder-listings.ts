// python-cinderclient's listings in the scale suite (issue 21) — `cinder list` (which follows the
// next links page by page), `cinder list --status error` and `cinder list --sort name:asc` — at
// 1,000 volumes and at 100,000 (plus the volumes the suite's operations created before). The
// listings run the `cinder` command's own code (cinderclient.shell, what /usr/bin/cinder runs)
// several times in one Python interpreter (children/cinder-shell.py), so that the interpreter's
// start-up — 0.4 to 1.3 s on this loaded machine, more than a page — stays out of the timings. A
// figure is the time per page: a listing's wall time less the shell's own set-up (a `--limit 1`
// run's time outside its one page request, run right before each listing so both see the same
// load), over the pages the client requested (counted by wrapping its request method; they match
// ⌈volumes listed / 1,000⌉, Cinder's osapi_max_limit). Every listing must come back whole: every
// volume once, exactly the volumes in error, every name in order.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { MAX_PAGE_SIZE } from '../../src/volumes/list-query.js';
import { requireBinary } from '../support/binaries.js';
import { cinderAuthArgs, parseCinderTable } from '../support/cinder-cli.js';
import { filledNamesSorted } from '../support/volume-fill.js';
import { type BenchContext, type BenchResult, percentile, relative, standalone } from './types.js';

/** The listings, by the name their figures carry. */
const LISTINGS = {
  list: [],
  status: ['--status', 'error'],
  name: ['--sort', 'name:asc'],
} as const satisfies Record<string, readonly string[]>;

type Listing = keyof typeof LISTINGS;

/** A run's time limit: a listing of 100,000 volumes through python-cinderclient takes a minute or more on a loaded machine. */
const LISTING_TIMEOUT_MS = 900_000;

/** What the listings cost at one volume count. */
export interface CinderListings {
  readonly volumes: number;
  /** Median time (ms) of a `cinder list --limit 1` run outside its page request: the shell's set-up and printing. */
  readonly setupMs: number;
  /** Per listing: ms per page, net of the shell's set-up (python-cinderclient's own work included). */
  readonly msPerPage: Readonly<Record<Listing, number>>;
  /** Per listing: ms per page of the page requests alone (sending, the API's answer, reading and decoding it). */
  readonly requestMsPerPage: Readonly<Record<Listing, number>>;
}

const run = promisify(execFile);

/** Pages a listing of `volumes` volumes takes at the API's page size. */
function pagesOf(volumes: number): number {
  return Math.max(1, Math.ceil(volumes / MAX_PAGE_SIZE));
}

/** The Python that runs `cinder` (its `#!` line): cinderclient is installed for that one. */
async function cinderPython(): Promise<string> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const text = await readFile(join(dir, 'cinder'), 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    const shebang = /^#!\s*(\S+)/.exec(text);
    if (shebang) return shebang[1] as string;
  }
  throw new Error('no `cinder` script with a #! line on PATH');
}

/** One run of the shell: wall time, and the page requests it made with their time. */
interface ShellRun {
  readonly ms: number;
  readonly pages: number;
  readonly http_ms: number;
}

/** Runs the shell with each run's arguments in one interpreter; a run with `out` keeps its table there. */
async function shellRuns(apiUrl: string, runs: readonly { args: readonly string[]; out: string | null }[]): Promise<ShellRun[]> {
  const plan = JSON.stringify({ common: cinderAuthArgs(apiUrl), runs });
  const script = join(import.meta.dirname, 'children', 'cinder-shell.py');
  const { stdout } = await run(await cinderPython(), [script, plan], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    timeout: LISTING_TIMEOUT_MS * runs.length,
    maxBuffer: 2 ** 20,
  });
  const out = stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as ShellRun);
  if (out.length !== runs.length) throw new Error(`cinder shell: ${out.length} results for ${runs.length} runs`);
  return out;
}

/**
 * Checks that a listing came back whole: `filled` volumes written by the fill, `created` more
 * created through the API (no name, not in error); resolves with how many it listed.
 */
function verified(listing: Listing, out: string, filled: number, created: number): number {
  const rows = parseCinderTable(out);
  const fail = (what: string): never => {
    throw new Error(`cinder list (${listing}) at ${filled + created} volumes: ${what}`);
  };
  if (listing === 'list') {
    if (rows.length !== filled + created) fail(`${rows.length} rows, not ${filled + created}`);
    if (new Set(rows.map((r) => r.ID)).size !== rows.length) fail('a volume listed twice');
  } else if (listing === 'status') {
    if (rows.length !== filled / 10) fail(`${rows.length} rows, not ${filled / 10}`);
    if (!rows.every((r) => r.Status === 'error')) fail('a volume not in error');
  } else {
    // Ascending, a missing name sorts first: the created volumes, then the filled ones by name.
    const names = rows.map((r) => r.Name ?? '');
    if (names.length !== filled + created) fail(`${names.length} rows, not ${filled + created}`);
    const unnamed = names.slice(0, created).findIndex((n) => n.startsWith('vol-'));
    if (unnamed >= 0) fail(`row ${unnamed} is ${names[unnamed]}, where a volume without a name belongs`);
    const expected = filledNamesSorted(filled);
    const at = expected.findIndex((n, i) => names[created + i] !== n);
    if (at >= 0) fail(`row ${created + at} is ${names[created + at]}, not ${expected[at]}`);
  }
  return rows.length;
}

/**
 * p50 (ms) of the first 100-volume page of the API in an order, straight over HTTP: in name
 * order on etcd it ranges to the end of the scope, so it shows what etcd's walk of the whole
 * scope costs beside the default order (logged, not a figure: the scale suite's own p50s are
 * the figures of a page).
 */
async function firstPageP50(apiUrl: string, query: string): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 18; i++) {
    const started = performance.now();
    const res = await fetch(`${apiUrl}/v3/admin/volumes/detail?limit=100${query}`, { headers: { 'OpenStack-API-Version': 'volume 3.45' } });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`GET /volumes/detail?limit=100${query}: HTTP ${res.status}`);
    if (i >= 3) times.push(performance.now() - started);
  }
  return percentile(times, 50);
}

/** Rounds of each listing: the median of a few at 1,000 volumes (one page each), the lower of two of a hundred pages (one busy stretch of the shared machine is not the API's doing). */
function roundsAt(volumes: number, quick: boolean): number {
  if (volumes <= 1_000) return quick ? 3 : 5;
  return 2;
}

/**
 * Runs each listing against the `filled` volumes of the fill (every tenth in error, named
 * `vol-<i>`: test/support/volume-fill.ts) and `created` more created through the API, each
 * listing right after a `--limit 1` run; `tmpDir` holds the tables.
 */
export async function measureCinderListings(ctx: Pick<BenchContext, 'quick' | 'log' | 'tmpDir'>, apiUrl: string, filled: number, created = 0): Promise<CinderListings> {
  requireBinary('cinder', 'python3-cinderclient');
  const volumes = filled + created;
  const rounds = roundsAt(volumes, ctx.quick);
  const order = Object.keys(LISTINGS) as Listing[];
  const tableOf = (listing: Listing): string => join(ctx.tmpDir, `cinder-${volumes}-${listing}.txt`);
  const plan: { args: readonly string[]; out: string | null }[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const listing of order) plan.push({ args: ['list', '--limit', '1'], out: null }, { args: ['list', ...LISTINGS[listing]], out: round === rounds - 1 ? tableOf(listing) : null });
  }
  const results = await shellRuns(apiUrl, plan);
  const setups = results.filter((_, i) => i % 2 === 0).map((r) => r.ms - r.http_ms);
  const setupMs = percentile(setups, 50);
  const msPerPage = { list: 0, status: 0, name: 0 };
  const requestMsPerPage = { list: 0, status: 0, name: 0 };
  const notes: string[] = [];
  for (const [k, listing] of order.entries()) {
    const runs = results.filter((_, i) => i % 2 === 1 && Math.floor(i / 2) % order.length === k);
    const listed = verified(listing, await readFile(tableOf(listing), 'utf8'), filled, created);
    const pages = runs[runs.length - 1]?.pages ?? 0;
    if (pages !== pagesOf(listed)) ctx.log(`cinder list (${listing}): ${pages} page requests for ${listed} volumes, not ${pagesOf(listed)}`);
    msPerPage[listing] = (percentile(runs.map((r) => r.ms), 50) - setupMs) / Math.max(1, pages);
    requestMsPerPage[listing] = percentile(runs.map((r) => r.http_ms), 50) / Math.max(1, pages);
    notes.push(`${listing} ${msPerPage[listing].toFixed(1)} ms (${pages} pages; their requests ${requestMsPerPage[listing].toFixed(1)} ms a page)`);
  }
  const [byCreation, byName] = [await firstPageP50(apiUrl, ''), await firstPageP50(apiUrl, '&sort=name:asc')];
  ctx.log(`cinder at ${volumes} volumes: set-up ${setupMs.toFixed(0)} ms; per page: ${notes.join(', ')}`);
  ctx.log(`first 100-volume page at ${volumes} volumes over HTTP, p50: default order ${byCreation.toFixed(1)} ms, name order ${byName.toFixed(1)} ms`);
  return { volumes, setupMs, msPerPage, requestMsPerPage };
}

/**
 * The figures of both volume counts: per listing, the time per page of the whole command
 * (`…_ms_per_page_…`) and of its page requests alone (`…_request_ms_per_page_…`) — what the API
 * serves, the "a page at 100,000 ≤ 2× a page at 1,000"; python-cinderclient's own work
 * per volume grows with the length of the listing (for one, it copies its list of volumes at
 * every page, and it prints one table of all of them). Each listing's page at the large count is
 * compared with its page at 1,000, except the status listing's: at 1,000 volumes it is one page
 * of 100 (every tenth volume), at 100,000 pages of 1,000, so its page is compared with a page of
 * `cinder list` at 1,000 — the same page size.
 */
export function cinderFigures(store: 'etcd' | 'sqlite', label: string, small: CinderListings, big: CinderListings): BenchResult[] {
  const name = (what: string, size: string): string => `scale.cinder_${what}_${size}_${store}`;
  const out: BenchResult[] = [standalone(name('setup_ms', '1k'), small.setupMs, 'ms'), standalone(name('setup_ms', label), big.setupMs, 'ms')];
  for (const [kind, of] of [
    ['ms_per_page', (l: CinderListings) => l.msPerPage],
    ['request_ms_per_page', (l: CinderListings) => l.requestMsPerPage],
  ] as const) {
    const listSmall = standalone(name(`list_${kind}`, '1k'), of(small).list, 'ms');
    const nameSmall = standalone(name(`name_${kind}`, '1k'), of(small).name, 'ms');
    out.push(
      listSmall,
      relative(name(`list_${kind}`, label), of(big).list, 'ms', listSmall),
      standalone(name(`status_${kind}`, '1k'), of(small).status, 'ms'),
      relative(name(`status_${kind}`, label), of(big).status, 'ms', listSmall),
      nameSmall,
      relative(name(`name_${kind}`, label), of(big).name, 'ms', nameSmall),
    );
  }
  return out;
}
