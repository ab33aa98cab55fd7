// hearth's layering, as data: which top-level module of src/ may import which. The dependency
// check (.dependency-cruiser.mjs, run by `make lint`) enforces it, and docs/architecture.md's
// module table is generated from it (`make generate`; a unit test fails when they disagree),
// so the picture and the code cannot drift. A module is a folder of src/ or a file at its root.

/** @type {Record<string, { readonly doc: string; readonly may: readonly string[] | '*' }>} */
export const MODULES = {
  errors: { doc: 'CoordinatorError (code, retryable, cause) and its subclasses', may: [] },
  identity: { doc: 'cluster and host ids, OwnerRef (one run of a host), Cinder host matching', may: [] },
  fence: { doc: 'Fence / KeyGuard: conditions outside a record that a write depends on', may: [] },
  preview: { doc: 'bounded, escaped previews of caller-sent values for error messages', may: [] },
  version: { doc: 'build info', may: ['config'] },
  protocol: { doc: 'the message and record-schema versions this build reads and writes; the skew rules (pure)', may: ['errors'] },
  config: { doc: 'the option table (schema.ts), loading and merging, rules, redaction; the only reader of process.env', may: ['errors'] },
  observability: { doc: 'pino logger with redaction, the Prometheus registry', may: ['config', 'version'] },
  lifecycle: { doc: 'Clock and sleep, the retry policy (Backoff, retry), deadlines, the Closer, the quiet collector (memory back after a burst)', may: ['errors', 'observability'] },
  concurrency: { doc: 'small primitives: Slots, EventQueue, IdleWaiters, KeyedFifoMutex', may: ['errors'] },
  etcd: { doc: 'etcd client factory (deadlines, no blind retries), key layout, error translation', may: ['config', 'errors', 'fence', 'lifecycle', 'observability'] },
  amqp: { doc: 'RabbitMQ client: a self-healing connection that moves between the nodes of a cluster, confirmed publishing, refusals explained, management API reads', may: ['config', 'errors', 'lifecycle', 'observability'] },
  ops: { doc: '/metrics, /livez, /readyz listener and the Health registry', may: ['config', 'errors', 'observability'] },
  session: { doc: 'Session port: etcd lease with keepalive and loss signal; local session', may: ['errors', 'etcd', 'fence', 'lifecycle', 'observability'] },
  locks: { doc: 'LockService port: etcd fair lock; local fair mutex + data-dir file lock', may: ['concurrency', 'errors', 'etcd', 'fence', 'lifecycle', 'observability', 'session'] },
  membership: { doc: 'Membership port: join, alive keys, cluster and service records, watch', may: ['concurrency', 'errors', 'etcd', 'fence', 'identity', 'lifecycle', 'observability', 'session'] },
  state: { doc: 'pure volume/snapshot state machines; StateStore port (etcd, SQLite); record versions', may: ['errors', 'etcd', 'fence', 'identity', 'lifecycle', 'observability', 'preview', 'protocol'] },
  drivers: { doc: 'VolumeDriver port: file and fake drivers', may: ['config', 'errors', 'lifecycle', 'observability'] },
  routing: { doc: 'JobBus port (AMQP, in-process); topology names; message schemas and versions; declaring the quorum queues and watching their replicas', may: ['amqp', 'concurrency', 'errors', 'lifecycle', 'observability', 'ops', 'protocol'] },
  fencing: { doc: 'proof that a dead incarnation can act no more before its work or locks move: the fence queue, the runner, the methods (exec, kubernetes, lock-delay, process-gone)', may: ['config', 'errors', 'etcd', 'fence', 'identity', 'incarnation', 'lifecycle', 'locks', 'membership', 'observability'] },
  incarnation: { doc: 'one run of a worker: session, membership and locks under one supervisor', may: ['concurrency', 'errors', 'identity', 'lifecycle', 'locks', 'membership', 'observability', 'session'] },
  api: { doc: 'fastify server: Host check, auth, microversions, body parsing, Cinder faults, version document; cluster and operator routes', may: ['config', 'errors', 'fencing', 'identity', 'locks', 'membership', 'observability', 'ops', 'preview', 'protocol', 'routing', 'state'] },
  'volume-types': { doc: 'volume types and their extra specs (multiattach): VolumeTypeStore port (etcd, SQLite)', may: ['errors', 'etcd'] },
  volumes: { doc: 'volume/snapshot application service and its Cinder routes (volumes, snapshots, attachments, types); JobPublisher and ClusterAdmission ports', may: ['api', 'errors', 'fence', 'lifecycle', 'observability', 'preview', 'protocol', 'routing', 'state', 'volume-types'] },
  worker: { doc: 'the volume manager: claims ops, runs drivers under locks, fenced completion, hand-back, sweeper', may: ['concurrency', 'drivers', 'errors', 'fence', 'identity', 'incarnation', 'lifecycle', 'locks', 'membership', 'observability', 'routing', 'state'] },
  backend: { doc: 'backend health and capacity: the worker\'s periodic check, Cinder\'s capacity filter, the pool view and get_pools', may: ['api', 'drivers', 'errors', 'lifecycle', 'membership', 'messages', 'observability', 'preview'] },
  census: { doc: 'counts of resources by status and the oldest unfinished operations: Census port (etcd watch, SQLite counts), the exporter (the oldest live member), metrics', may: ['errors', 'etcd', 'lifecycle', 'membership', 'observability'] },
  messages: { doc: 'user messages (Cinder\'s messages API): MessageStore port (etcd, SQLite), event ids, routes', may: ['api', 'errors', 'etcd', 'lifecycle', 'observability', 'preview'] },
  orphans: { doc: 'orphan detection and cleanup: pure cores, detector, cleaner, automatic cleanup, workers/cleanup', may: ['api', 'errors', 'etcd', 'identity', 'lifecycle', 'membership', 'observability', 'preview', 'routing', 'state'] },
  upgrade: { doc: 'rolling upgrades: presence of every process, message versions negotiated from the living, the finalized record schema, finalize and the data migration', may: ['api', 'concurrency', 'errors', 'etcd', 'lifecycle', 'observability', 'ops', 'protocol', 'routing', 'session', 'state'] },
  composition: { doc: 'the composition root: picks every adapter (cluster.ts, single-node.ts) and assembles the roles', may: '*' },
  app: { doc: 'startApp: one pass over the composition, stop order = start order reversed', may: ['api', 'composition', 'config', 'lifecycle', 'membership', 'observability', 'ops', 'routing', 'version'] },
  cli: { doc: 'commander program; one module per command group', may: ['api', 'app', 'config', 'errors', 'observability', 'volumes'] },
  main: { doc: 'process entry (bin/hearth.js → runCli)', may: ['cli'] },
};

/** Files of a concern folder that are adapters (`<backend>-*.ts`): only their own folder and the composition root import them. */
export const ADAPTER_FILE = '^src/[^/]+/(etcd|local|sqlite|amqp|file|fake)-[^/]+\\.ts$';

/** The only places that may choose adapters. */
export const COMPOSITION_ROOT = ['composition', 'app'];

/** A module's path pattern: the folder `src/<name>/` or the file `src/<name>.ts`. */
export function modulePath(name) {
  return `src/${name}(/|\\.ts$)`;
}
