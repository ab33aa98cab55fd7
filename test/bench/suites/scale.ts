// Scale: a 100-volume page (`/volumes/detail?limit=100`, default sort and with a status filter)
// at 1,000 and at 100,000 volumes, on a cluster (one API process, one worker, etcd) and on a
// single node (SQLite); the etcd bytes the API process read per list request
// (`hearth_etcd_read_bytes_total{kind="list"}`); and the resident set of the API process and the
// worker (the single node's one process) idle, after walking all 100,000 volumes page by page
// (1,000 a page) and after 10,000 operations through the API. Volumes are written straight into
// the store with their index entries (test/support/volume-fill.ts), so that filling 100,000
// takes seconds; every tenth is in `error`.
// Processes run the built JavaScript, as deployers run it, with the container image's allocator
// (jemalloc; ../allocator.ts; BENCH_ALLOCATOR=glibc for glibc's malloc). BENCH_QUICK=1: 10,000 volumes, 1,000
// operations.
// python-cinderclient's `cinder list` at both counts (with --status error, --sort name:asc): ../cinder-listings.ts.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Etcd3 } from 'etcd3';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { fillEtcd, fillSqlite } from '../../support/volume-fill.js';
import { benchAllocator } from '../allocator.js';
import { metricOf } from '../../support/orphans-cluster.js';
import { waitFor } from '../../support/wait.js';
import { type BenchContext, type BenchResult, type BenchSuite, percentile, relative, standalone } from '../types.js';
import { cinderFigures, measureCinderListings } from '../cinder-listings.js';

const SMALL = 1_000;
const PAGE = 100;
const WALK_PAGE = 1_000;
const OPS_IN_FLIGHT = 32;
const SETTLE_MS = 8_000;

interface Sizes {
  readonly big: number;
  readonly ops: number;
  readonly samples: number;
  readonly label: string;
}

function sizesOf(ctx: BenchContext): Sizes {
  return ctx.quick ? { big: 10_000, ops: 1_000, samples: 15, label: '10k' } : { big: 100_000, ops: 10_000, samples: 40, label: '100k' };
}

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) / 1_024;
}

/** Median RSS (MB) of five samples a second apart, after a settle period. */
async function settledRss(pid: number, settleMs: number): Promise<number> {
  await new Promise((r) => setTimeout(r, settleMs));
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push(await rssMb(pid));
    await new Promise((r) => setTimeout(r, 1_000));
  }
  return samples.sort((a, b) => a - b)[2] as number;
}

async function get(api: string, path: string, version = '3.45'): Promise<Record<string, unknown>> {
  const send = () => fetch(`${api}${path}`, { headers: { 'OpenStack-API-Version': `volume ${version}` } });
  // A kept-alive socket the server closed while the bench was filling ("other side closed"): a GET is safe to send again.
  const res = await send().catch(send);
  const body = (await res.json()) as Record<string, unknown>;
  if (res.status !== 200) throw new Error(`GET ${path}: HTTP ${res.status} ${JSON.stringify(body)}`);
  return body;
}

/** p50 (ms) of `samples` page requests, after three to warm up; each must return a full page. */
async function listP50(api: string, query: string, samples: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < samples + 3; i++) {
    const started = performance.now();
    const body = await get(api, `/v3/admin/volumes/detail?${query}`);
    const elapsed = performance.now() - started;
    if ((body.volumes as unknown[]).length !== PAGE) throw new Error(`a page of ${(body.volumes as unknown[]).length} volumes, not ${PAGE}`);
    if (i >= 3) times.push(elapsed);
  }
  return percentile(times, 50);
}

/** Every volume, page by page through the next links' markers; resolves with how many. */
async function walk(api: string): Promise<number> {
  let seen = 0;
  let marker: string | undefined;
  for (let pages = 0; pages < 1_000; pages++) {
    const body = await get(api, `/v3/admin/volumes/detail?limit=${WALK_PAGE}${marker === undefined ? '' : `&marker=${marker}`}`);
    const volumes = body.volumes as { id: string }[];
    seen += volumes.length;
    const next = (body.volumes_links as { href: string }[] | undefined)?.[0]?.href;
    if (next === undefined) return seen;
    marker = new URL(next).searchParams.get('marker') ?? undefined;
  }
  throw new Error('no end of pages after 1,000 pages');
}

/** `count` volume creates through the API, `OPS_IN_FLIGHT` at a time, then waits until none is `creating`. */
async function operations(api: string, count: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: OPS_IN_FLIGHT }, async () => {
      while (next < count) {
        next++;
        const res = await fetch(`${api}/v3/admin/volumes`, {
          method: 'POST',
          headers: { 'OpenStack-API-Version': 'volume 3.27', 'content-type': 'application/json' },
          body: JSON.stringify({ volume: { size: 1 } }),
        });
        if (res.status !== 202) throw new Error(`create: HTTP ${res.status} ${await res.text()}`);
        await res.arrayBuffer();
      }
    }),
  );
  await waitFor(async () => ((await get(api, '/v3/admin/volumes?status=creating&limit=1')).volumes as unknown[]).length === 0, {
    timeoutMs: 300_000,
    intervalMs: 500,
    what: `${count} creates to complete`,
  });
}

async function listBytes(opsUrl: string): Promise<number> {
  return metricOf(await (await fetch(`${opsUrl}/metrics`)).text(), 'hearth_etcd_read_bytes_total', { kind: 'list' });
}

/** List figures at one volume count: p50 of the default page and of a status-filtered one (and etcd bytes per list). */
async function measureLists(api: HearthProcess, samples: number, etcd: boolean): Promise<{ p50: number; statusP50: number; bytes: number; statusBytes: number }> {
  const b0 = etcd ? await listBytes(api.opsUrl) : 0;
  const p50 = await listP50(api.apiUrl, `limit=${PAGE}`, samples);
  const b1 = etcd ? await listBytes(api.opsUrl) : 0;
  const statusP50 = await listP50(api.apiUrl, `limit=${PAGE}&status=error`, samples);
  const b2 = etcd ? await listBytes(api.opsUrl) : 0;
  const requests = samples + 3;
  return { p50, statusP50, bytes: (b1 - b0) / requests, statusBytes: (b2 - b1) / requests };
}

async function clusterRun(ctx: BenchContext, sizes: Sizes): Promise<BenchResult[]> {
  const prefix = `/bench-scale-${randomUUID().slice(0, 8)}`;
  const env = {
    HEARTH_ETCD_ENDPOINTS: ctx.etcd.endpoints.join(','),
    HEARTH_ETCD_PREFIX: prefix,
    HEARTH_AMQP_URL: ctx.rabbit.url,
    HEARTH_AMQP_PREFIX: `s${randomUUID().slice(0, 8)}`,
    HEARTH_CLUSTER: 'scale',
    HEARTH_BACKEND: 'be',
    HEARTH_DRIVER_NAME: 'fake',
    HEARTH_LOG_LEVEL: 'warn',
    ...benchAllocator().env,
  };
  const procs: HearthProcess[] = [];
  try {
    const api = await startHearth({ name: 'bench-scale-api', mode: 'built', env: { ...env, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' }, startTimeoutMs: 60_000 });
    procs.push(api);
    const worker = await startHearth({ name: 'bench-scale-worker', mode: 'built', env: { ...env, HEARTH_HOST: 'w1', HEARTH_ROLES: 'worker' }, startTimeoutMs: 60_000 });
    procs.push(worker);
    const [apiIdle, workerIdle] = await Promise.all([settledRss(api.pid, SETTLE_MS * 2), settledRss(worker.pid, SETTLE_MS * 2)]);
    await fillEtcd(ctx.etcd.endpoints, prefix, 'scale@be', 0, SMALL);
    const small = await measureLists(api, sizes.samples, true);
    const smallCinder = await measureCinderListings(ctx, api.apiUrl, SMALL);
    const filledAt = performance.now();
    await fillEtcd(ctx.etcd.endpoints, prefix, 'scale@be', SMALL, sizes.big);
    ctx.log(`etcd: ${sizes.big} volumes written in ${((performance.now() - filledAt) / 1_000).toFixed(1)} s`);
    const big = await measureLists(api, sizes.samples, true);
    ctx.log(`etcd: p50 ${small.p50.toFixed(1)} → ${big.p50.toFixed(1)} ms, status ${small.statusP50.toFixed(1)} → ${big.statusP50.toFixed(1)} ms, ${small.bytes.toFixed(0)} → ${big.bytes.toFixed(0)} bytes a list`);
    const walkedAt = performance.now();
    const walked = await walk(api.apiUrl);
    if (walked !== sizes.big) throw new Error(`walked ${walked} volumes, not ${sizes.big}`);
    const walkS = (performance.now() - walkedAt) / 1_000;
    const [apiWalk, workerWalk] = await Promise.all([settledRss(api.pid, SETTLE_MS), settledRss(worker.pid, SETTLE_MS)]);
    const opsAt = performance.now();
    await operations(api.apiUrl, sizes.ops);
    ctx.log(`etcd: walked ${walked} volumes in ${walkS.toFixed(1)} s; ${sizes.ops} creates in ${((performance.now() - opsAt) / 1_000).toFixed(1)} s`);
    const [apiOps, workerOps] = await Promise.all([settledRss(api.pid, SETTLE_MS), settledRss(worker.pid, SETTLE_MS)]);
    ctx.log(`etcd: RSS api ${apiIdle.toFixed(0)} / ${apiWalk.toFixed(0)} / ${apiOps.toFixed(0)} MB, worker ${workerIdle.toFixed(0)} / ${workerWalk.toFixed(0)} / ${workerOps.toFixed(0)} MB (idle / after the walk / after the operations)`);
    // Last, so that the RSS figures above follow the walk and the operations only.
    const bigCinder = await measureCinderListings(ctx, api.apiUrl, sizes.big, sizes.ops);
    return [
      ...figures('etcd', sizes, small, big, walkS, [
        ['api', apiIdle, apiWalk, apiOps],
        ['worker', workerIdle, workerWalk, workerOps],
      ]),
      ...cinderFigures('etcd', sizes.label, smallCinder, bigCinder),
    ];
  } finally {
    await Promise.all(procs.map((p) => p.kill()));
    // Best effort: 1.3 million keys in one delete can outlast etcd's request timeout; the run's etcd is thrown away anyway.
    const etcd = new Etcd3({ hosts: ctx.etcd.endpoints });
    await etcd
      .delete()
      .prefix(`${prefix}/`)
      .catch((err: unknown) => ctx.log(`could not delete ${prefix}/: ${err instanceof Error ? err.message : String(err)}`));
    etcd.close();
  }
}

async function singleNodeRun(ctx: BenchContext, sizes: Sizes): Promise<BenchResult[]> {
  const hearth = await startHearth({ name: 'bench-scale-single', mode: 'built', env: { HEARTH_DRIVER_NAME: 'fake', HEARTH_LOG_LEVEL: 'warn', ...benchAllocator().env }, startTimeoutMs: 60_000 });
  try {
    const idle = await settledRss(hearth.pid, SETTLE_MS * 2);
    // The cluster field only names who serves a volume; listing does not read it.
    const cluster = 'single@default';
    fillSqlite(hearth.dataDir, cluster, 0, SMALL);
    const small = await measureLists(hearth, sizes.samples, false);
    const smallCinder = await measureCinderListings(ctx, hearth.apiUrl, SMALL);
    const filledAt = performance.now();
    fillSqlite(hearth.dataDir, cluster, SMALL, sizes.big);
    ctx.log(`sqlite: ${sizes.big} volumes written in ${((performance.now() - filledAt) / 1_000).toFixed(1)} s`);
    const big = await measureLists(hearth, sizes.samples, false);
    ctx.log(`sqlite: p50 ${small.p50.toFixed(1)} → ${big.p50.toFixed(1)} ms, status ${small.statusP50.toFixed(1)} → ${big.statusP50.toFixed(1)} ms`);
    const walkedAt = performance.now();
    const walked = await walk(hearth.apiUrl);
    if (walked !== sizes.big) throw new Error(`walked ${walked} volumes, not ${sizes.big}`);
    const walkS = (performance.now() - walkedAt) / 1_000;
    const afterWalk = await settledRss(hearth.pid, SETTLE_MS);
    await operations(hearth.apiUrl, sizes.ops);
    const afterOps = await settledRss(hearth.pid, SETTLE_MS);
    ctx.log(`sqlite: walked ${walked} volumes in ${walkS.toFixed(1)} s; RSS ${idle.toFixed(0)} / ${afterWalk.toFixed(0)} / ${afterOps.toFixed(0)} MB (idle / after the walk / after the operations)`);
    const bigCinder = await measureCinderListings(ctx, hearth.apiUrl, sizes.big, sizes.ops);
    return [...figures('sqlite', sizes, small, big, walkS, [['single', idle, afterWalk, afterOps]]), ...cinderFigures('sqlite', sizes.label, smallCinder, bigCinder)];
  } finally {
    await hearth.kill();
  }
}

type Lists = Awaited<ReturnType<typeof measureLists>>;

function figures(store: 'etcd' | 'sqlite', sizes: Sizes, small: Lists, big: Lists, walkS: number, rss: readonly [string, number, number, number][]): BenchResult[] {
  const p50Small = standalone(`scale.list_p50_ms_1k_${store}`, small.p50, 'ms');
  const statusSmall = standalone(`scale.list_status_p50_ms_1k_${store}`, small.statusP50, 'ms');
  const out: BenchResult[] = [
    p50Small,
    relative(`scale.list_p50_ms_${sizes.label}_${store}`, big.p50, 'ms', p50Small),
    statusSmall,
    relative(`scale.list_status_p50_ms_${sizes.label}_${store}`, big.statusP50, 'ms', statusSmall),
    standalone(`scale.walk_s_${sizes.label}_${store}`, walkS, 's'),
  ];
  if (store === 'etcd') {
    const bytesSmall = standalone('scale.etcd_bytes_per_list_1k', small.bytes, 'B');
    const statusBytesSmall = standalone('scale.etcd_bytes_per_status_list_1k', small.statusBytes, 'B');
    out.push(
      bytesSmall,
      relative(`scale.etcd_bytes_per_list_${sizes.label}`, big.bytes, 'B', bytesSmall),
      statusBytesSmall,
      relative(`scale.etcd_bytes_per_status_list_${sizes.label}`, big.statusBytes, 'B', statusBytesSmall),
    );
  }
  for (const [who, idle, afterWalk, afterOps] of rss) {
    const name = store === 'etcd' ? `${who}_etcd` : 'sqlite';
    const idleFigure = standalone(`scale.rss_mb_idle_${name}`, idle, 'MB');
    out.push(
      idleFigure,
      relative(`scale.rss_mb_after_walk_${name}`, afterWalk, 'MB', idleFigure),
      relative(`scale.rss_mb_after_ops_${name}`, afterOps, 'MB', idleFigure),
    );
  }
  return out;
}

export const suite: BenchSuite = {
  name: 'scale',
  async run(ctx) {
    const sizes = sizesOf(ctx);
    ctx.log(`allocator: ${benchAllocator().label}`);
    const etcd = await clusterRun(ctx, sizes);
    const sqlite = await singleNodeRun(ctx, sizes);
    return [...etcd, ...sqlite];
  },
};
