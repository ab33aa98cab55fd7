// `make bench-doc`: writes docs/benchmarks.md from test/bench/results/latest.json and
// latest.meta.json (both written by `make bench`). Usage: report.ts [--check] — with --check it
// only prints what is missing from the results and exits non-zero if anything is.
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { GOALS } from './goals.js';
import type { BenchMeta } from './machine.js';
import { missingFigures, renderReport } from './report-core.js';
import type { BenchResult } from './types.js';

const REPO = resolve(import.meta.dirname, '../..');
const RESULTS = join(REPO, 'test/bench/results');

const PREFACE = `
\`make bench\` starts its own etcd and RabbitMQ (one member and one node; the failover-ha suite
starts a cluster of three of each for itself), runs every suite under \`test/bench/suites/\` and
prints each figure beside a baseline measured **in the same run**, on the same servers and the
same machine; \`make bench-doc\` turns the run's \`test/bench/results/latest.json\` (an array of
\`{name, value, unit, baseline, baseline_value, ratio}\`) and \`latest.meta.json\` (the machine)
into this page. \`BENCH_QUICK=1 make bench\` is a short run for checking that everything works;
\`make bench BENCH=locks\` runs one suite (plus the etcd baselines).

What the suites measure (each file's header says more):

- **etcd baselines** (\`etcd-baseline.ts\`): one raw compare-and-put transaction at a time, and 32
  in flight on distinct keys.
- **locks** (\`locks.ts\`): hearth's etcd lock uncontended against raw txns and the npm etcd3
  \`Lock\`; 8 contender processes on one name against 8 processes using etcd's own lock service
  (\`/v3/lock/lock\` through its gateway, what \`etcdctl lock\` uses); the in-process lock. The
  \`*_paired_*\` figures repeat a comparison in alternating slices so both sides see the same load.
- **state transitions** (\`transitions.ts\`): conditional transitions on distinct volumes, 1 and
  32 in flight, against raw txns; the SQLite store against a plain \`UPDATE … WHERE\` in a
  transaction (WAL, \`synchronous=FULL\`), in alternating slices.
- **amqp bus** (\`amqp.ts\`): confirmed publish and consume-and-ack through the job bus against
  raw amqplib on the same quorum queue setup.
- **e2e** (\`e2e.ts\`): 32 clients alternating a volume create and its delete through the API to
  the final transition, fake driver without latency: an API process and 1 or 3 worker processes
  on etcd and RabbitMQ, and the single-node default (SQLite, in-process bus). Each configuration
  runs once, one after the other (not in alternating slices), so under a changing load the 1 vs 3
  workers ratio is the least reliable figure on this page.
- **failover** (\`failover.ts\`): real \`hearth serve\` processes at the **default** lease TTL; each
  round catches a volume create inside a slow fake driver call on a victim worker, \`kill -9\`s it,
  and measures from the kill until the orphan shows in \`GET /hearth/v1/orphans\` and in the
  surviving worker's \`hearth_orphaned_operations\` (detect), and until an operator's
  \`workers/cleanup\` for it, sent the moment it shows, has been carried out by the survivor — the
  volume in \`error\` and its op record gone (takeover). Baseline: the TTL — nothing can see the
  death before etcd expires the killed worker's lease, at most one TTL after its last keepalive.
  With automatic cleanup instead of an operator, takeover comes \`orphans.graceMs\` (at least one
  TTL, default 60 s) after detection. The cleanup waits for the victim's fence, so takeover
  includes it: after a \`kill -9\` the rescuer's local process check fences at once
  (\`process-gone\`, whatever \`fencing.method\`). The fence figures freeze the victim instead
  (SIGSTOP: its keepalives stop, but its process is still there, so the process check cannot
  fence it): \`failover.takeover_fenced_s\` with an \`exec\` fence that succeeds at once (the
  fault suite's \`fence-kill.mjs\`, which kills the frozen process by its recorded pid and start
  time), \`failover.takeover_lock_delay_s\` with \`fencing.method\` none and the default
  lock-delay (\`fencing.lock_delay_s\` = the TTL), which nothing shortens: about two TTLs. The
  \`*_after_expiry_s\` figures count from the lease's expiry (seen on an etcd watch) rather than
  the kill, so the keepalive phase at the kill — up to TTL/3 from round to round — does not enter
  what the exec fence adds. Kill and lock-delay rounds alternate on one rescuer; the exec rounds
  follow on a rescuer configured with the fence.
- **failover-ha** (\`failover-ha.ts\`, run by \`make bench BENCH=failover\` too): the only suite on
  the production topology — a three-member etcd and a three-node RabbitMQ cluster it starts
  itself; every other suite keeps the single member and node, so their baselines stay
  comparable. An API process and three workers (instant fake driver) with every member in
  \`etcd.endpoints\` and every node in \`amqp.url\`, everything else at its default (the TTL
  too), while four client loops keep creating volumes through the API and wait for each to be
  \`available\`. The **stall** is the longest time in which no create completed, from the fault
  until the first completion 2 s after it was undone. \`failover.etcd_leader_*\`: \`kill -9\` of
  the etcd leader, restarted 6 s later — the stall, worker incarnations that ended, requests the
  API refused (its 5xx answers, reads included), the election. \`failover.amqp_node_*\`: \`kill -9\` of the RabbitMQ node a worker
  is connected to and of the cluster queue's leader, alternately, restarted 10 s later, the
  window closing once every node runs and the queue has its three members online again.
  \`failover.ha_*\`: creates accepted but never \`available\` across those rounds, and driver
  calls made twice or overlapping (the fake driver's journal). \`failover.quorum_return_*\`: two
  members of three killed for the TTL + 5 s (every worker loses its session while its process
  lives), then restarted: from the first moment a leader is seen until every worker's
  \`/readyz\` answers 200 (each fences its own earlier incarnation and revokes that lease once its
  runs settled; docs/fencing.md), and until the first create completes. Each figure is a
  median, \`*_max_s\` the worst round; the baseline is the TTL, beside which they are printed.
- **memory** (\`memory.ts\`): VmRSS of one worker process, idle in an empty cluster (baseline),
  then the same process with 10,000 volumes in its cluster's store and 100 operations in flight
  holding 100 locks; also its V8 heap in use. The worker keeps no per-volume state (the store is
  etcd): what it holds here is the 100 runs in flight (deliveries, lock handles, timers).
  Processes run the built JavaScript (\`bin/hearth.js\`) with no memory flags and the container
  image's allocator (jemalloc, \`allocator.ts\`; \`BENCH_ALLOCATOR=glibc\` for glibc's malloc).
- **scale** (\`scale.ts\`, \`make bench BENCH=scale.ts\`): a 100-volume page
  (\`/volumes/detail?limit=100\`, default sort and \`status=error\`) at 1,000 and at 100,000
  volumes, on a cluster (one API process, one worker, etcd) and on a single node (SQLite), p50 of
  40 requests each; the etcd bytes the API process read per list request
  (\`hearth_etcd_read_bytes_total{kind="list"}\`); the time to walk all 100,000 page by page
  (1,000 a page); and the RSS of the API process and the worker (the single node's process) idle,
  after the walk and after 10,000 creates through the API. Volumes are written straight into the
  store with their index entries (\`test/support/volume-fill.ts\`), every tenth in \`error\`;
  processes run the built JavaScript with the image's allocator, as the memory suite does (RSS
  after a burst on glibc's malloc: docs/operations.md, "Memory"). The p50s are a few
  milliseconds on a shared two-core machine: noisy. BENCH_QUICK=1: 10,000 volumes and 1,000
  creates. Before the indexes, a page at 20,000 volumes cost 132 ms on a single node and etcd
  refused listings past about 8,000 volumes (its 4 MiB message limit).
  The \`scale.cinder_*\` figures run python-cinderclient (\`cinder-listings.ts\`): \`cinder list\`
  (which follows the next links, 1,000 volumes a page), \`cinder list --status error\` and
  \`cinder list --sort name:asc\`, against the cluster's API process and the single node — at
  1,000 volumes right after that fill (median of 5 runs of each), and at 100,000 at the end of
  each half, after the RSS figures, so with the 10,000 volumes the creates added (110,000;
  the lower of 2 runs; BENCH_QUICK=1: 11,000). They run the \`cinder\` command's own code
  (\`cinderclient.shell\`) several times in one Python interpreter (\`children/cinder-shell.py\`),
  whose start-up — 0.4 to 1.3 s on this machine, more than a page — would otherwise swamp one
  page; the client's page requests are counted and timed by wrapping its request method.
  \`…_request_ms_per_page_…\`: the page requests' time per page as the client sees it (the API's
  answer, reading and decoding it) — the goals; \`…_ms_per_page_…\`: the whole command's time per
  page, less the shell's set-up (\`…_setup_ms_…\`: a \`--limit 1\` run outside its request),
  python-cinderclient's own work included, which grows with the length of a listing (for one, it
  copies its list of volumes at every page, and it prints one table of all). At 1,000 volumes the
  status listing is one page of 100, so its pages at 100,000 are compared with a page of
  \`cinder list\` at 1,000. Every listing is checked whole: every volume once, exactly those in
  error, every name in order.
  One full run (load average 5–6): a page request at 1,000 → 110,000 volumes, etcd 110 → 100
  ms (0.91×), \`--status error\` 118 ms (1.08× a \`cinder list\` page at 1,000), \`--sort name:asc\` 100 →
  111 ms (1.10×); SQLite 25 → 35 ms (1.38×), 39 ms (1.55×), 28 → 39 ms (1.42×); the whole command
  0.83–0.96× on etcd, 1.11–1.49× on SQLite. The first name-order page of 100, which makes etcd
  walk the whole scope, took 46 ms at 110,000 volumes against 13 ms in the default order
  (docs/operations.md, "Many volumes").
- **scaling** (\`scaling.ts\`): aggregate uncontended lock and transition throughput of 1 and of 3
  worker processes, each with 8 in flight (the default \`amqp.prefetch\`) on names and volumes of
  its own, alternating in rounds. On one machine with two cores, three processes add no capacity:
  they and etcd share the same cores, so this shows what the extra processes cost, not how a
  cluster on separate machines scales. (The e2e 1 → 3 workers figure differs: a worker runs at
  most \`amqp.prefetch\` = 8 operations at once, so three workers also triple the operations in
  flight.)
- **driver** (\`driver.ts\`): the file driver's snapshot of an empty 100 GiB volume through its
  public API (median of 7 rounds), against \`cp --sparse=always --reflink=auto\` of the same
  file run directly, in alternating rounds: what the driver adds is its temp file, two fsyncs
  and a link. \`driver.read_every_block_100g_estimate_s\` is what the driver's earlier copy paid
  at the least — reading every block, measured on an empty 1 GiB volume and multiplied by 100.
  The temp directory's file system decides the figure: one that does not report holes makes
  \`cp\` read every block too (see docs/drivers.md).
- **replication** (\`replication.ts\`, issue 17): one API process and three workers, the fake
  driver replicating to a simulated target, under a stream of creates from three clients
  (100 ms driver calls). Each round fails the cluster over to the target, enables it again
  (the failover disables it) and fails it back: \`replication.failover_s\` and
  \`replication.failback_s\` from the request (3.26) to the cluster showing \`failed-over\`
  (\`enabled\`) and thawed, medians, against the same stream's create p50 (a failover waits for
  the operations in flight, then raises the epoch and promotes the target);
  \`replication.ops_stalled_s\`, the longest time no create completed around a failover or
  failback (the worst), against the failover time; creates failed, creates refused while frozen
  or disabled (Cinder's 400, expected), and writes to the old primary while failed over (the
  fake driver's journal). 3 rounds, 1 with BENCH_QUICK=1.

**Read the figures with the machine in mind.** Everything — etcd (one member, fsync on the same
disk), RabbitMQ, every hearth process and the benchmark clients — shares the cores listed below
with other engineers' test runs (see the load average). Absolute figures are far below what a
real etcd cluster on its own machines gives; the ratios against same-run baselines are the
meaningful part, and even they move from run to run. A figure compared with the run's shared etcd
baselines (measured first, under the load of that moment) can be far off either way when the load
changed since; where a suite also measured the comparison *paired*, the goals table checks both,
and the paired one is the fairer.
`;

async function main(): Promise<void> {
  const results = JSON.parse(await readFile(join(RESULTS, 'latest.json'), 'utf8')) as BenchResult[];
  const problems = missingFigures(results);
  if (process.argv.includes('--check')) {
    for (const p of problems) console.error(p);
    process.exitCode = problems.length === 0 ? 0 : 1;
    return;
  }
  const meta = JSON.parse(await readFile(join(RESULTS, 'latest.meta.json'), 'utf8')) as BenchMeta;
  // Written by hand from profiled and diagnostic runs (see their first lines), kept beside the generated figures.
  const appendix = await Promise.all(['profiles.md', 'scaleout.md', 'comparison-18.md'].map((f) => readFile(join(REPO, 'test/bench', f), 'utf8')));
  await writeFile(join(REPO, 'docs/benchmarks.md'), renderReport(results, meta, GOALS, PREFACE, appendix.map((a) => a.trim()).join('\n\n')));
  console.log(`wrote docs/benchmarks.md${problems.length > 0 ? ` (${problems.length} problem(s) listed in it)` : ''}`);
}

await main();
