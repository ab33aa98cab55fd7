import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { z } from 'zod';
import { opt, type SpecTree, type ValueOf } from './option.js';
import { fencingSpec } from './schema-fencing.js';
import { alertsSpec, backendHealthSpec } from './schema-health.js';
import { orphansSpec, upgradeSpec } from './schema-operations.js';

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const nameSchema = z.string().regex(NAME_PATTERN, 'must be letters, digits, ".", "_" or "-" (no "@" or "#")');
const listenSchema = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be host:port, e.g. 127.0.0.1:8776');
const urlItem = z.string().regex(/^https?:\/\/[^\s/]+$/, 'must be an http(s)://host:port URL');
const HOST_PART = '(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9.-]+)';
const publicUrlSchema = z
  .string()
  .regex(new RegExp(`^(https?://${HOST_PART}(:\\d{1,5})?(/[^\\s?#@]*)?)?$`), 'must be an http(s)://host[:port][/path] URL without user, query or fragment');
/** A list of URLs: comma-separated text, or in a YAML or JSON file a list, kept as the text. */
const urlListSchema = z.preprocess((v) => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? v.join(',') : v), z.string());
const hostItem = z.string().regex(new RegExp(`^${HOST_PART}(:\\d{1,5})?$`), 'must be host or host:port, e.g. localhost:18776');
const proxyItem = z.string().refine((s) => {
  const [address, bits, ...rest] = s.split('/');
  const family = isIP(address ?? '');
  if (family === 0 || rest.length > 0) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
}, 'must be an IP address or a CIDR range, e.g. 10.0.0.0/8');

/** Timeouts and a connection limit of one listener (see ListenerLimits in src/ops/listener-limits.ts). */
function listenerLimits(what: string, defaults: { requestTimeoutMs: number; headersTimeoutMs: number; keepAliveTimeoutMs: number; maxConnections: number }) {
  return {
    requestTimeoutMs: opt.int({
      default: defaults.requestTimeoutMs,
      min: 1_000,
      max: 600_000,
      unit: 'ms',
      doc: `Longest time the ${what} waits for a whole request (headers and body); a slower client gets 408 and its connection is closed.`,
    }),
    headersTimeoutMs: opt.int({
      default: defaults.headersTimeoutMs,
      min: 1_000,
      max: 600_000,
      unit: 'ms',
      doc: `Longest time the ${what} waits for a request's headers (at most requestTimeoutMs).`,
    }),
    keepAliveTimeoutMs: opt.int({
      default: defaults.keepAliveTimeoutMs,
      min: 100,
      max: 600_000,
      unit: 'ms',
      doc: `How long the ${what} keeps an idle keep-alive connection open between requests.`,
    }),
    maxConnections: opt.int({
      default: defaults.maxConnections,
      min: 1,
      max: 100_000,
      unit: 'count',
      doc: `Most connections the ${what} holds open at once; further ones are closed as soon as they are accepted.`,
    }),
  };
}

function defaultHost(): string {
  // The pod name in Kubernetes; a host name is never empty but may contain dots.
  return hostname().replace(/[^A-Za-z0-9._-]/g, '-') || 'localhost';
}

/**
 * Every configuration option hearth has, declared once.
 *
 * The environment name of an option is `HEARTH_` + its path in upper snake case
 * (`etcd.endpoints` → `HEARTH_ETCD_ENDPOINTS`); its flag is `--` + the path in kebab case
 * (`--etcd-endpoints`). `docs/configuration.md` is generated from this table.
 */
export const configSpec = {
  cluster: opt.string({
    schema: nameSchema,
    default: 'hearth',
    doc: 'Cluster name; the cluster id is <cluster>@<backend> (Cinder\'s form, e.g. ceph@rbd).',
  }),
  host: opt.string({
    schema: nameSchema,
    default: defaultHost,
    doc: 'This worker\'s host name, unique per worker; the host id is <host>@<backend>. In Kubernetes, the pod name.',
  }),
  backend: opt.string({
    schema: nameSchema,
    default: 'default',
    doc: 'Backend name shared by the cluster\'s members; the suffix of the cluster and host ids.',
  }),
  zone: opt.string({
    schema: nameSchema,
    default: 'nova',
    doc: 'Availability zone this worker reports in service views (Cinder\'s storage_availability_zone).',
  }),
  roles: opt.listOf(['api', 'worker'] as const, {
    default: ['api', 'worker'],
    doc: 'What this process runs: the REST API, the volume worker, or both (comma-separated).',
  }),
  dataDir: opt.string({
    schema: z.string().min(1),
    default: './var',
    doc: 'Directory for local state: the SQLite store and the data-dir lock in single-node mode.',
  }),
  leaseTtlMs: opt.int({
    default: 10_000,
    min: 2_000,
    max: 600_000,
    unit: 'ms',
    doc: 'TTL of the worker\'s etcd session lease, in whole seconds (etcd lease TTLs are); a dead worker is seen as down within this time.',
  }),
  leaseMarginMs: opt.int({
    default: 2_000,
    min: 100,
    unit: 'ms',
    doc: 'Safety margin: a worker treats its lease as lost this long before etcd could expire it.',
  }),
  reportIntervalMs: opt.int({
    default: 5_000,
    min: 100,
    unit: 'ms',
    doc: 'How often a worker refreshes the heartbeat time in its alive key.',
  }),
  shutdownGraceMs: opt.int({
    default: 30_000,
    min: 0,
    unit: 'ms',
    doc: 'On SIGTERM, how long in-flight operations may run before they are handed back.',
  }),
  idleCollector: opt.bool({
    default: true,
    doc: 'Give memory back once a burst is over: when the event loop has been quiet for a while and the heap holds garbage, run a full collection through V8\'s gc function, which hearth enables inside the process (--expose-gc at run time; src/lifecycle/quiet-collector.ts). Off: V8 alone decides, and an idle process keeps the heap a burst grew.',
  }),
  sweepIntervalMs: opt.int({
    default: 5_000,
    min: 100,
    unit: 'ms',
    doc: 'How often a worker re-publishes operations that were recorded but not published for at least this long (the API died or the broker was away).',
  }),
  forceDeleteWaitMs: opt.int({
    default: 60_000,
    min: 100,
    max: 3_600_000,
    unit: 'ms',
    doc: 'A force-delete of a volume or snapshot with an operation in flight waits this long for proof that the old run stopped (its lock released after its driver call returned, or its dead owner fenced); past it the resource ends in error_deleting with a user message saying why.',
  }),
  messageTtlMs: opt.int({
    default: 2_592_000_000,
    min: 60_000,
    unit: 'ms',
    doc: "How long a user message is kept (Cinder's message_ttl, 30 days); its guaranteed_until.",
  }),
  backendHealth: backendHealthSpec,
  alerts: alertsSpec,
  retry: {
    initialDelayMs: opt.int({
      default: 100,
      min: 10,
      max: 60_000,
      unit: 'ms',
      doc: 'First wait after a call to etcd failed (reconnecting a session, rejoining, re-watching, re-reading, retrying a run); each further failure doubles it, with full jitter, up to retry.maxDelayMs.',
    }),
    maxDelayMs: opt.int({
      default: 1_000,
      min: 10,
      max: 600_000,
      unit: 'ms',
      doc: 'Longest wait between two attempts against etcd; small, so a member is back within about this long after etcd answers again.',
    }),
  },
  log: {
    level: opt.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const, {
      default: 'info',
      doc: 'Lowest level written to the log on stdout.',
    }),
    format: opt.enum(['auto', 'pretty', 'json'] as const, {
      default: 'auto',
      doc: 'How log lines look: json (one JSON object per line, for collectors), pretty (coloured, human-readable lines), or auto (pretty when stdout is a terminal, JSON otherwise).',
    }),
  },
  api: {
    listen: opt.string({ schema: listenSchema, default: '127.0.0.1:8776', doc: 'Address of the Cinder-compatible REST API.' }),
    maxBodyBytes: opt.int({ default: 65_536, min: 1_024, unit: 'bytes', doc: 'Largest request body the API accepts.' }),
    auth: opt.enum(['auto', 'token', 'noauth'] as const, {
      default: 'auto',
      doc: 'How API requests are authenticated: token (the token in api.tokenFile), noauth (Cinder\'s noauth: every request is admin; loopback api.listen only), or auto (token when api.tokenFile is set, else noauth).',
    }),
    tokenFile: opt.string({
      default: '',
      doc: 'File holding the API token (at least 16 printable characters; surrounding whitespace ignored), sent as X-Auth-Token or Authorization: Bearer. Re-read when the file changes.',
    }),
    readerTokenFile: opt.string({
      default: '',
      doc: 'File holding an optional read-only API token: it may GET and HEAD only; anything else gets 403.',
    }),
    allowRemoteNoauth: opt.bool({
      default: false,
      doc: 'Allow noauth on a non-loopback api.listen, so that anyone who reaches the port is admin. For isolated test labs only.',
    }),
    publicUrl: opt.string({
      schema: publicUrlSchema,
      default: '',
      doc: 'Base URL of the API as clients reach it (e.g. http://hearth-api:8776), used for the links in responses; never taken from the Host header. Empty: http://<api.listen> (0.0.0.0 and :: read as 127.0.0.1 and [::1]).',
    }),
    allowedHosts: opt.list({
      item: hostItem,
      default: [],
      doc: 'In noauth mode, Host header values accepted besides localhost, 127.0.0.0/8 and [::1] with the listen port (e.g. localhost:18776 for an SSH tunnel). Every other Host is refused, against DNS rebinding.',
    }),
    trustedProxies: opt.list({
      item: proxyItem,
      default: [],
      doc: 'Addresses or CIDR ranges of reverse proxies whose X-Forwarded-Proto and X-Forwarded-Host build the links in responses. Empty: X-Forwarded-* headers are ignored.',
    }),
    ...listenerLimits('API', { requestTimeoutMs: 30_000, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000, maxConnections: 512 }),
  },
  ops: {
    listen: opt.string({
      schema: listenSchema,
      default: '127.0.0.1:9776',
      doc: 'Address of the operations listener: /metrics, /livez and /readyz.',
    }),
    ...listenerLimits('ops listener', { requestTimeoutMs: 10_000, headersTimeoutMs: 5_000, keepAliveTimeoutMs: 5_000, maxConnections: 64 }),
  },
  etcd: {
    endpoints: opt.list({
      item: urlItem,
      default: [],
      doc: 'etcd client URLs (comma-separated). Empty: single-node mode on SQLite and local locks.',
    }),
    prefix: opt.string({
      schema: z.string().regex(/^\/[^\s]*[^/\s]$/, 'must start with "/" and not end with "/"'),
      default: '/hearth',
      doc: 'Key prefix under which hearth keeps all of its etcd keys.',
    }),
    username: opt.string({ default: '', doc: 'etcd user name (empty: no etcd authentication).' }),
    password: opt.string({ default: '', secret: 'value', doc: 'etcd password for the user. Prefer etcd.passwordFile: environment variables leak into child processes and /proc.' }),
    passwordFile: opt.string({
      default: '',
      doc: 'File holding the etcd password (a mounted Secret; a trailing newline is ignored), instead of etcd.password. Read at start.',
    }),
    caFile: opt.string({ default: '', doc: 'PEM file with the CA that signed etcd\'s server certificate (enables TLS).' }),
    certFile: opt.string({ default: '', doc: 'PEM client certificate for etcd mutual TLS.' }),
    keyFile: opt.string({ default: '', doc: 'PEM private key of the etcd client certificate.' }),
    callTimeoutMs: opt.int({
      default: 3_000,
      min: 100,
      unit: 'ms',
      doc: 'Deadline of a single etcd call; a call past it fails with a retryable error.',
    }),
  },
  amqp: {
    url: opt.string({
      schema: urlListSchema,
      default: '',
      secret: 'url',
      doc:
        'RabbitMQ URL (amqp:// or amqps://, with user and vhost, e.g. amqps://hearth@rabbitmq:5671/hearth); for a RabbitMQ cluster, one URL per node, comma-separated (in a file, a list works too) ' +
        '(amqps://hearth@rabbit-0:5671/hearth,amqps://hearth@rabbit-1:5671/hearth,…): all with one scheme and one vhost. A process starts at a node picked from its host name, ' +
        'moves to the next URL at once when an attempt fails or its connection is lost, and waits (amqp.reconnectMaxDelayMs) only after every node failed in turn. Empty: the in-process job bus of single-node mode.',
    }),
    passwordFile: opt.string({
      default: '',
      doc: 'File holding the password of the user in amqp.url (a mounted Secret; a trailing newline is ignored), instead of a password in the URL; it applies to every URL of the list. Checked at start, read again on every connection attempt.',
    }),
    quorumInitialGroupSize: opt.int({
      default: 3,
      min: 1,
      max: 99,
      unit: 'count',
      doc:
        'Replicas (members) of each quorum queue hearth creates (x-quorum-initial-group-size); a broker with fewer nodes makes one per node. Applies only when a queue is created: ' +
        'a queue that exists keeps the members and arguments it was declared with. RabbitMQ 3.10 does not re-grow a queue that lost a member: see amqp.managementUrl.',
    }),
    managementUrl: opt.string({
      schema: urlListSchema,
      default: '',
      secret: 'url',
      doc:
        'RabbitMQ management API (http:// or https://, e.g. https://rabbit-0:15671), one URL per node, comma-separated, tried in turn. Set: every process polls it (amqp.managementIntervalMs) ' +
        'for the members and online members of its quorum queues and exports them (hearth_amqp_queue_members); empty: nothing is polled, and an under-replicated queue does not show in hearth\'s metrics. ' +
        'Credentials: the URL\'s own user and password, else the AMQP user and password (amqp.url, amqp.passwordFile); TLS as for AMQP (amqp.caFile, amqp.certFile, amqp.keyFile).',
    }),
    managementIntervalMs: opt.int({
      default: 30_000,
      min: 1_000,
      max: 3_600_000,
      unit: 'ms',
      doc: 'How often the management API is polled (amqp.managementUrl).',
    }),
    prefix: opt.string({ schema: nameSchema, default: 'hearth', doc: 'Prefix of every exchange and queue name.' }),
    prefetch: opt.int({ default: 8, min: 1, max: 1_000, unit: 'count', doc: 'Unacknowledged jobs a worker may hold.' }),
    caFile: opt.string({ default: '', doc: 'PEM CA file for amqps:// connections.' }),
    certFile: opt.string({ default: '', doc: 'PEM client certificate for amqps:// connections.' }),
    keyFile: opt.string({ default: '', doc: 'PEM private key of the AMQP client certificate.' }),
    publishTimeoutMs: opt.int({
      default: 5_000,
      min: 100,
      unit: 'ms',
      doc: 'How long a publish waits for the broker (connection and confirm) before it fails.',
    }),
    heartbeatSeconds: opt.int({
      default: 10,
      min: 0,
      max: 600,
      unit: 's',
      doc: 'AMQP heartbeat; a silent broker is taken as gone after about two of these. 0 disables it.',
    }),
    connectTimeoutMs: opt.int({
      default: 10_000,
      min: 100,
      unit: 'ms',
      doc: 'How long one connection attempt (TCP, TLS and the AMQP handshake) may take.',
    }),
    reconnectMaxDelayMs: opt.int({
      default: 10_000,
      min: 100,
      unit: 'ms',
      doc: 'Upper bound of the jittered exponential backoff between reconnection attempts.',
    }),
    maxDeliveries: opt.int({
      default: 10,
      min: 1,
      max: 20,
      unit: 'count',
      doc: 'Deliveries of one job before it is dead-lettered as poison (counted by the quorum queue).',
    }),
  },
  orphans: orphansSpec,
  fencing: fencingSpec,
  upgrade: upgradeSpec,
  driver: {
    name: opt.enum(['file', 'fake'] as const, { default: 'file', doc: 'Volume driver: sparse files on a shared directory, or fake.' }),
    fileDir: opt.string({ default: '', doc: 'Directory of the file driver, mounted by every member. Empty: <dataDir>/volumes.' }),
    replicationTargets: replicationTargetsOption(
      'File driver: replication targets, <backend_id>:<directory> comma-separated (e.g. dr-site:/mnt/dr/volumes); every volume and snapshot is copied to each at the end of every call, and a failover can promote one (docs/drivers.md, Replication). Empty: no replication.',
    ),
    fakeLatencyMs: opt.int({ default: 0, min: 0, unit: 'ms', doc: 'Fake driver: how long each call takes.' }),
    fakeFailureRate: opt.number({ default: 0, min: 0, max: 1, unit: 'ratio', doc: 'Fake driver: share of calls that fail.' }),
    fakeJournal: opt.string({ default: '', doc: 'Fake driver: JSON-lines journal of every call, shared by all members.' }),
    fakeDownFile: opt.string({ default: '', doc: 'Fake driver: while this file exists the backend is down (its first line is the reason). Empty: always up.' }),
    fakeCapacityGiB: opt.int({ default: 1024, min: 1, max: 1_048_576, unit: 'GiB', doc: 'Fake driver: size of its (empty) pool.' }),
    fakeHang: opt.listOf(['createVolume', 'deleteVolume', 'extendVolume', 'createSnapshot', 'deleteSnapshot', 'initializeConnection', 'terminateConnection'] as const, {
      default: [],
      doc: 'Fake driver: calls that never finish by themselves; they end when aborted (comma-separated). For tests.',
    }),
    fakeHangIgnoresAbort: opt.bool({ default: false, doc: 'Fake driver: a hanging call ignores its abort too, as a call stuck in the kernel would. For tests.' }),
    fakeReplicationTargets: replicationTargetsOption(
      'Fake driver: simulated replication targets, <backend_id>:<name> comma-separated (the name only labels the journal); failovers and epoch markers are kept beside the journal. Empty: no replication.',
    ),
    maxOverSubscriptionRatio: opt.number({
      default: 20,
      min: 1,
      max: 1_000,
      unit: 'ratio',
      doc: "How many times the pool's size thin volumes may provision in all (Cinder's max_over_subscription_ratio); 1 forbids over-subscription.",
    }),
    reservedPercentage: opt.int({
      default: 0,
      min: 0,
      max: 100,
      unit: 'percent',
      doc: "Share of the pool kept free: new volumes and extends are refused when they would need it (Cinder's reserved_percentage).",
    }),
  },
} satisfies SpecTree;

/** The resolved, validated configuration. */
export type Config = ValueOf<typeof configSpec>;

/**
 * `driver.replicationTargets`, `driver.fakeReplicationTargets`: `<backend_id>:<where>` items.
 * The same rules as the driver's own check (src/drivers/replication-targets.ts, which config may
 * not import), so a bad list stops the process at load with the option named.
 */
function replicationTargetsOption(doc: string): ReturnType<typeof opt.list> {
  const idPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
  const schema = z
    .array(z.string())
    .readonly()
    .superRefine((items, ctx) => {
      const ids: string[] = [];
      const places: string[] = [];
      for (const item of items) {
        const i = item.indexOf(':');
        const id = i < 0 ? '' : item.slice(0, i);
        const place = i < 0 ? '' : item.slice(i + 1).trim();
        let problem: string | undefined;
        if (i < 0) problem = `${JSON.stringify(item)} is not <backend_id>:<directory> (e.g. dr-site:/mnt/dr/volumes)`;
        else if (!idPattern.test(id)) problem = `backend id ${JSON.stringify(id)} must be 1-64 letters, digits, ".", "_" or "-", not starting with a symbol`;
        else if (id === 'default') problem = 'backend id "default" names the primary (the failback target); give the target another id';
        else if (place === '') problem = `target ${JSON.stringify(id)} names no directory`;
        else if (ids.includes(id)) problem = `backend id ${JSON.stringify(id)} is named more than once`;
        else if (places.includes(place)) problem = `${JSON.stringify(place)} is the place of more than one target`;
        if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
        ids.push(id);
        places.push(place);
      }
    });
  return { ...opt.list({ default: [], doc }), schema };
}
