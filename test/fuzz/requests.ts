// Request generators of the API fuzzer: every route, with bodies from its request schema
// mutated (wrong types, huge and deep values, unicode, prototype keys), headers (Host, content
// types, microversions, tokens, Origin), paths and query strings. Pure fast-check arbitraries:
// ids of volumes that exist are chosen by index at send time (see FuzzRequest.resolve).
import fc from 'fast-check';

/** A generated request; `resolve` fills in ids of existing resources when it is sent. */
export interface FuzzRequest {
  /** The route template it was made from, for statistics. */
  readonly route: string;
  readonly method: string;
  /** The request target with `{volume}`/`{snapshot}` placeholders still in it. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | undefined;
  /** Which existing resource a `{volume}`/`{snapshot}` placeholder stands for. */
  readonly pick: number;
}

/** Resources that exist when a request is sent. */
export interface Pool {
  readonly volumes: readonly string[];
  readonly snapshots: readonly string[];
}

/** A valid id from the pool (by the generated index), or a made-up one when the pool is empty. */
export function resolvePlaceholders(text: string, pool: Pool, pick: number): string {
  const choose = (ids: readonly string[], fallback: string): string => (ids.length === 0 ? fallback : (ids[pick % ids.length] as string));
  return text
    .replaceAll('{volume}', choose(pool.volumes, '00000000-0000-4000-8000-000000000001'))
    .replaceAll('{snapshot}', choose(pool.snapshots, '00000000-0000-4000-8000-000000000002'));
}

const DEEP = '\u0000DEEP:';

/** A placeholder for a value nested `depth` levels deep, spliced into the JSON text later (JSON.stringify would recurse). */
function deepMarker(depth: number, kind: 'array' | 'object'): string {
  return `${DEEP}${kind}:${depth}`;
}

/** JSON text of `value`, with deep markers replaced by the nesting they stand for. */
export function toJsonText(value: unknown): string {
  const text = JSON.stringify(value) ?? 'null';
  return text.replace(/"\\u0000DEEP:(array|object):(\d+)"/g, (_m, kind: string, n: string) => {
    const depth = Number(n);
    return kind === 'array' ? `${'['.repeat(depth)}1${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
  });
}

/** Strings a caller might send: short, unicode (lone surrogates included), control and bidi characters, huge. */
const nastyString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom('', ' ', '\u202e', '\u0000', '\u001b[31m', '__proto__', 'constructor', '../../etc/passwd', '%zz', 'a\nb', '\ud800'),
  fc.constantFrom(1_000, 20_000, 70_000).map((n) => 'x'.repeat(n)),
);

/** Any JSON-ish value a mutation puts where another was expected. */
const strangeValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 3, arbitrary: nastyString },
  { weight: 1, arbitrary: fc.constantFrom(-1, 0, 1.5, 1e308, -0, 2 ** 53 + 1, true, false, null) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(5, 33, 1_000, 10_000), fc.constantFrom('array' as const, 'object' as const)).map(([d, k]) => deepMarker(d, k)) },
);

/** A key a mutation adds: sometimes one a JavaScript object treats specially. */
const strangeKey: fc.Arbitrary<string> = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'extra', ''), fc.string({ maxLength: 8 }));

type Mutation =
  | { readonly kind: 'set'; readonly at: number; readonly value: unknown }
  | { readonly kind: 'delete'; readonly at: number }
  | { readonly kind: 'add'; readonly at: number; readonly key: string; readonly value: unknown };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: strangeValue }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('add' as const), at: fc.nat(), key: strangeKey, value: strangeValue }),
);

/** Every container in `root` (objects and arrays), root first, with the path to it. */
function containers(root: unknown): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const walk = (v: unknown): void => {
    if (typeof v !== 'object' || v === null) return;
    out.push(v as Record<string, unknown>);
    for (const child of Object.values(v)) walk(child);
  };
  walk(root);
  return out;
}

/** Applies `mutations` to a deep copy of `base`. */
function mutate(base: unknown, mutations: readonly Mutation[]): unknown {
  const root = structuredClone(base);
  for (const m of mutations) {
    const all = containers(root);
    if (all.length === 0) return m.kind === 'delete' ? undefined : 'value' in m ? m.value : root;
    const target = all[m.at % all.length] as Record<string, unknown>;
    const keys = Object.keys(target);
    if (m.kind === 'add') {
      // defineProperty, so that `__proto__` becomes an own key as JSON.parse would make it.
      Object.defineProperty(target, m.key, { value: m.value, enumerable: true, writable: true, configurable: true });
    } else if (keys.length > 0) {
      const key = keys[m.at % keys.length] as string;
      if (m.kind === 'delete') delete target[key];
      else target[key] = m.value;
    }
  }
  return root;
}

/** A body from `base`: as it is, mutated, or something that is not the JSON asked for. */
function bodyFrom(base: unknown): fc.Arbitrary<string | undefined> {
  return fc.oneof(
    { weight: 5, arbitrary: fc.constant(toJsonText(base)) },
    { weight: 6, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }).map((ms) => toJsonText(mutate(base, ms))) },
    { weight: 1, arbitrary: fc.constantFrom(undefined, '', '  ', '{', 'null', '[]', '"x"', '123', '{"a":1}{', '\u0000', '{"__proto__":{"x":1}}') },
    { weight: 1, arbitrary: strangeValue.map((v) => toJsonText(v)) },
  );
}

/** One path segment: mostly a sensible one, sometimes anything a URL can carry. */
function segment(sensible: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 8, arbitrary: sensible },
    {
      weight: 2,
      arbitrary: fc.oneof(
        fc.string({ maxLength: 16 }).map(encodeURIComponent),
        fc.string({ unit: 'grapheme', maxLength: 6 }).map(encodeURIComponent),
        fc.constantFrom('%zz', '%', '..', '%2e%2e', '%00', '%E2%80%AE', '%C0', '%ff', 'a'.repeat(300), '%2F', 'x;y'),
      ),
    },
  );
}

const project = segment(fc.constant('admin'));
const volumeId = segment(fc.constant('{volume}'));
const snapshotId = segment(fc.constant('{snapshot}'));

/** A query string: known keys with sensible or strange values, and unknown keys. */
function query(keys: readonly string[]): fc.Arbitrary<string> {
  const key = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...(keys.length > 0 ? keys : ['limit'])) }, { weight: 1, arbitrary: strangeKey });
  const value = fc.oneof(
    fc.constantFrom('1', '0', '2', 'true', 'false', 'name:asc', 'created_at:desc', 'available', 'admin', '{volume}', '-1', 'x:up', ''),
    fc.string({ maxLength: 10 }),
    fc.constantFrom('9'.repeat(40), 'x'.repeat(3_000)),
  );
  return fc.oneof(
    { weight: 3, arbitrary: fc.constant('') },
    { weight: 4, arbitrary: fc.array(fc.tuple(key, value), { minLength: 1, maxLength: 4 }).map((pairs) => `?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')}`) },
    { weight: 1, arbitrary: fc.constantFrom('?%zz=1', '?a=%zz', '?&&', '?limit=1&limit=2', '?=', '?__proto__[x]=1', '?constructor=1') },
  );
}

interface Route {
  readonly name: string;
  readonly method: string;
  /**
   * The server's routes (fastify's URL patterns) this entry reaches; a unit test checks that
   * every registered route is reached by some entry (test/unit/api/fuzz-coverage.test.ts).
   */
  readonly routes: readonly string[];
  readonly path: fc.Arbitrary<string>;
  readonly body?: unknown;
  readonly queryKeys?: readonly string[];
}

const LIST_KEYS = ['limit', 'marker', 'sort', 'sort_key', 'sort_dir', 'all_tenants', 'project_id', 'status', 'name', 'with_count'];

/** Every route of the API, with a valid body where it takes one. */
export const ROUTES: readonly Route[] = [
  { name: 'GET /', method: 'GET', routes: ['/', '/v3', '/v3/'], path: fc.constantFrom('/', '/v3', '/v3/') },
  { name: 'POST volumes', method: 'POST', routes: ['/v3/:project_id/volumes'], path: project.map((p) => `/v3/${p}/volumes`), body: { volume: { size: 1, name: 'fuzz', description: null, metadata: { k: 'v' } } } },
  { name: 'GET volumes', method: 'GET', routes: ['/v3/:project_id/volumes', '/v3/:project_id/volumes/detail'], path: fc.tuple(project, fc.constantFrom('', '/detail')).map(([p, d]) => `/v3/${p}/volumes${d}`), queryKeys: LIST_KEYS },
  { name: 'GET volume', method: 'GET', routes: ['/v3/:project_id/volumes/:id'], path: fc.tuple(project, volumeId).map(([p, id]) => `/v3/${p}/volumes/${id}`) },
  { name: 'DELETE volume', method: 'DELETE', routes: ['/v3/:project_id/volumes/:id'], path: fc.tuple(project, volumeId).map(([p, id]) => `/v3/${p}/volumes/${id}`), queryKeys: ['cascade', 'force'] },
  { name: 'os-extend', method: 'POST', routes: ['/v3/:project_id/volumes/:id/action'], path: fc.tuple(project, volumeId).map(([p, id]) => `/v3/${p}/volumes/${id}/action`), body: { 'os-extend': { new_size: 3 } } },
  { name: 'volume os-reset_status', method: 'POST', routes: ['/v3/:project_id/volumes/:id/action'], path: fc.tuple(project, volumeId).map(([p, id]) => `/v3/${p}/volumes/${id}/action`), body: { 'os-reset_status': { status: 'available', attach_status: 'detached', migration_status: 'none' } } },
  { name: 'POST snapshots', method: 'POST', routes: ['/v3/:project_id/snapshots'], path: project.map((p) => `/v3/${p}/snapshots`), body: { snapshot: { volume_id: '{volume}', name: 's', force: false, metadata: {} } } },
  { name: 'GET snapshots', method: 'GET', routes: ['/v3/:project_id/snapshots', '/v3/:project_id/snapshots/detail'], path: fc.tuple(project, fc.constantFrom('', '/detail')).map(([p, d]) => `/v3/${p}/snapshots${d}`), queryKeys: [...LIST_KEYS, 'volume_id'] },
  { name: 'GET snapshot', method: 'GET', routes: ['/v3/:project_id/snapshots/:id'], path: fc.tuple(project, snapshotId).map(([p, id]) => `/v3/${p}/snapshots/${id}`) },
  { name: 'DELETE snapshot', method: 'DELETE', routes: ['/v3/:project_id/snapshots/:id'], path: fc.tuple(project, snapshotId).map(([p, id]) => `/v3/${p}/snapshots/${id}`) },
  { name: 'snapshot os-reset_status', method: 'POST', routes: ['/v3/:project_id/snapshots/:id/action'], path: fc.tuple(project, snapshotId).map(([p, id]) => `/v3/${p}/snapshots/${id}/action`), body: { 'os-reset_status': { status: 'available' } } },
  { name: 'GET clusters', method: 'GET', routes: ['/v3/:project_id/clusters', '/v3/:project_id/clusters/detail', '/v3/:project_id/clusters/:name'], path: fc.tuple(project, fc.constantFrom('', '/detail', '/hearth@default')).map(([p, d]) => `/v3/${p}/clusters${d}`), queryKeys: ['name', 'binary', 'is_up', 'disabled', 'num_hosts', 'num_down_hosts', 'frozen'] },
  { name: 'PUT clusters', method: 'PUT', routes: ['/v3/:project_id/clusters/:action'], path: fc.tuple(project, fc.constantFrom('enable', 'enable', 'disable', 'x')).map(([p, a]) => `/v3/${p}/clusters/${a}`), body: { name: 'hearth@default', binary: 'cinder-volume', disabled_reason: 'fuzz' } },
  { name: 'GET os-services', method: 'GET', routes: ['/v3/:project_id/os-services'], path: project.map((p) => `/v3/${p}/os-services`), queryKeys: ['host', 'binary'] },
  { name: 'os-services freeze/thaw', method: 'PUT', routes: ['/v3/:project_id/os-services/freeze', '/v3/:project_id/os-services/thaw'], path: fc.tuple(project, fc.constantFrom('freeze', 'thaw')).map(([p, a]) => `/v3/${p}/os-services/${a}`), body: { host: 'fuzz@default' } },
  {
    name: 'os-services failover',
    method: 'PUT',
    routes: ['/v3/:project_id/os-services/failover_host', '/v3/:project_id/os-services/failover'],
    path: fc.tuple(project, fc.constantFrom('failover_host', 'failover')).map(([p, a]) => `/v3/${p}/os-services/${a}`),
    body: { cluster: 'hearth@default', backend_id: 'nope' },
  },
  { name: 'POST os-services failover', method: 'POST', routes: ['/v3/:project_id/os-services/failover'], path: project.map((p) => `/v3/${p}/os-services/failover`), body: { host: 'nohost@default', backend_id: 'default' } },
  { name: 'workers/cleanup', method: 'POST', routes: ['/v3/:project_id/workers/cleanup'], path: project.map((p) => `/v3/${p}/workers/cleanup`), body: { cluster_name: 'hearth@default', is_up: 'false', resource_type: 'Volume', resource_id: '{volume}' } },
  { name: 'hearth views', method: 'GET', routes: ['/hearth/v1/orphans', '/hearth/v1/locks', '/hearth/v1/members'], path: fc.constantFrom('/hearth/v1/orphans', '/hearth/v1/locks', '/hearth/v1/members'), queryKeys: ['host', 'type', 'cluster'] },
  { name: 'DELETE service', method: 'DELETE', routes: ['/hearth/v1/services/:binary/:host'], path: fc.tuple(segment(fc.constant('cinder-volume')), segment(fc.constant('nohost@default'))).map(([b, h]) => `/hearth/v1/services/${b}/${h}`) },
  { name: 'GET dead-letters', method: 'GET', routes: ['/hearth/v1/dead-letters'], path: fc.constant('/hearth/v1/dead-letters'), queryKeys: ['limit'] },
  { name: 'volume os-force_delete', method: 'POST', routes: ['/v3/:project_id/volumes/:id/action'], path: fc.tuple(project, volumeId).map(([p, id]) => `/v3/${p}/volumes/${id}/action`), body: { 'os-force_delete': {} } },
  { name: 'snapshot os-force_delete', method: 'POST', routes: ['/v3/:project_id/snapshots/:id/action'], path: fc.tuple(project, snapshotId).map(([p, id]) => `/v3/${p}/snapshots/${id}/action`), body: { 'os-force_delete': {} } },
  { name: 'GET get_pools', method: 'GET', routes: ['/v3/:project_id/scheduler-stats/get_pools'], path: project.map((p) => `/v3/${p}/scheduler-stats/get_pools`), queryKeys: ['detail', 'name', 'volume_type', 'backend_state'] },
  { name: 'GET messages', method: 'GET', routes: ['/v3/:project_id/messages'], path: project.map((p) => `/v3/${p}/messages`), queryKeys: ['limit', 'marker', 'offset', 'sort', 'sort_key', 'sort_dir', 'resource_uuid', 'event_id', 'message_level'] },
  {
    name: 'GET message',
    method: 'GET',
    routes: ['/v3/:project_id/messages/:id'],
    path: fc.tuple(project, segment(fc.constantFrom('00000000-0000-4000-8000-000000000003', 'not-a-uuid'))).map(([p, id]) => `/v3/${p}/messages/${id}`),
  },
  { name: 'DELETE message', method: 'DELETE', routes: ['/v3/:project_id/messages/:id'], path: fc.tuple(project, segment(fc.constantFrom('00000000-0000-4000-8000-000000000003', 'not-a-uuid'))).map(([p, id]) => `/v3/${p}/messages/${id}`) },
  { name: 'GET ops', method: 'GET', routes: ['/hearth/v1/ops'], path: fc.constant('/hearth/v1/ops'), queryKeys: ['cluster', 'host', 'kind', 'owner_state'] },
  { name: 'GET fences', method: 'GET', routes: ['/hearth/v1/fences'], path: fc.constant('/hearth/v1/fences') },
  {
    name: 'confirm fence',
    method: 'POST',
    routes: ['/hearth/v1/fences/:incarnation/confirm'],
    path: segment(fc.constantFrom('nohost@default:1a2b', 'x')).map((inc) => `/hearth/v1/fences/${inc}/confirm`),
    body: { reason: 'fuzz' },
  },
  // Attachments (3.27+) and volume types: ids that are not UUIDs, unknown ones, and the fuzzer's volumes.
  { name: 'POST attachments', method: 'POST', routes: ['/v3/:project_id/attachments'], path: project.map((p) => `/v3/${p}/attachments`), body: { attachment: { volume_uuid: '{volume}', instance_uuid: null, connector: null } } },
  { name: 'GET attachments', method: 'GET', routes: ['/v3/:project_id/attachments', '/v3/:project_id/attachments/detail'], path: fc.tuple(project, fc.constantFrom('', '/detail')).map(([p, d]) => `/v3/${p}/attachments${d}`), queryKeys: ['all_tenants', 'volume_id', 'status', 'instance_id'] },
  ...(['GET', 'DELETE'] as const).map((method) => ({
    name: `${method} attachment`,
    method,
    routes: ['/v3/:project_id/attachments/:id'],
    path: fc.tuple(project, segment(fc.constantFrom('00000000-0000-4000-8000-000000000004', 'not-a-uuid'))).map(([p, id]) => `/v3/${p}/attachments/${id}`),
  })),
  { name: 'PUT attachment', method: 'PUT', routes: ['/v3/:project_id/attachments/:id'], path: fc.tuple(project, segment(fc.constantFrom('00000000-0000-4000-8000-000000000004', 'not-a-uuid'))).map(([p, id]) => `/v3/${p}/attachments/${id}`), body: { attachment: { connector: { host: 'fuzz' } } } },
  { name: 'attachment os-complete', method: 'POST', routes: ['/v3/:project_id/attachments/:id/action'], path: fc.tuple(project, segment(fc.constantFrom('00000000-0000-4000-8000-000000000004', 'not-a-uuid'))).map(([p, id]) => `/v3/${p}/attachments/${id}/action`), body: { 'os-complete': null } },
  { name: 'volume os-force_detach', method: 'POST', routes: ['/v3/:project_id/volumes/:id/action'], path: fc.tuple(project, volumeId).map(([p, id]) => `/v3/${p}/volumes/${id}/action`), body: { 'os-force_detach': { attachment_id: null } } },
  { name: 'POST types', method: 'POST', routes: ['/v3/:project_id/types'], path: project.map((p) => `/v3/${p}/types`), body: { volume_type: { name: 'fuzz', description: null, 'os-volume-type-access:is_public': true } } },
  { name: 'GET types', method: 'GET', routes: ['/v3/:project_id/types', '/v3/:project_id/types/:id', '/v3/:project_id/types/:id/extra_specs'], path: fc.tuple(project, fc.constantFrom('', '/default', '/not-a-uuid', '/00000000-0000-4000-8000-000000000005/extra_specs')).map(([p, d]) => `/v3/${p}/types${d}`) },
  { name: 'DELETE type', method: 'DELETE', routes: ['/v3/:project_id/types/:id', '/v3/:project_id/types/:id/extra_specs/:key'], path: fc.tuple(project, fc.constantFrom('00000000-0000-4000-8000-000000000005', 'fuzz', '00000000-0000-4000-8000-000000000005/extra_specs/multiattach')).map(([p, d]) => `/v3/${p}/types/${d}`) },
  { name: 'POST extra specs', method: 'POST', routes: ['/v3/:project_id/types/:id/extra_specs'], path: fc.tuple(project, fc.constantFrom('00000000-0000-4000-8000-000000000005', 'default')).map(([p, d]) => `/v3/${p}/types/${d}/extra_specs`), body: { extra_specs: { multiattach: '<is> True' } } },
  { name: 'GET upgrade', method: 'GET', routes: ['/hearth/v1/upgrade'], path: fc.constant('/hearth/v1/upgrade') },
  // A single node has nothing to finalize: every finalize is refused (409) and writes nothing.
  { name: 'upgrade finalize', method: 'POST', routes: ['/hearth/v1/upgrade/finalize'], path: fc.constant('/hearth/v1/upgrade/finalize'), body: { schema: 2 } },
  { name: 'unknown path', method: 'GET', routes: [], path: fc.oneof(fc.constantFrom('/v3/admin/nothing', '/v2/', '//v3//admin', '/x'.repeat(2_000), '/%zz'), fc.string({ maxLength: 20 }).map((s) => `/${encodeURIComponent(s)}`)) },
];

/** Headers: mostly what a real client sends, sometimes what an attacker or a broken client would. */
function headers(port: number): fc.Arbitrary<Record<string, string>> {
  const printable = fc.stringMatching(/^[\x21-\x7e]{0,40}$/);
  const host = fc.oneof(
    { weight: 12, arbitrary: fc.constant(`127.0.0.1:${port}`) },
    { weight: 3, arbitrary: fc.constantFrom(`localhost:${port}`, `[::1]:${port}`, `127.0.0.2:${port}`, `LOCALHOST:${port}`) },
    { weight: 3, arbitrary: fc.constantFrom(`rebind.attacker.example:${port}`, '127.0.0.1', `127.0.0.1:${port + 1}`, '', `127.0.0.1.nip.io:${port}`, `[::ffff:127.0.0.1]:${port}`) },
    { weight: 1, arbitrary: printable },
  );
  const contentType = fc.oneof(
    { weight: 10, arbitrary: fc.constant('application/json') },
    { weight: 3, arbitrary: fc.constantFrom('application/json; charset=utf-8', 'application/vnd.openstack.volume+json', 'APPLICATION/JSON', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', '') },
    { weight: 1, arbitrary: printable },
  );
  const version = fc.oneof(
    fc.integer({ min: 0, max: 80 }).map((n) => `volume 3.${n}`),
    fc.constantFrom('volume latest', 'volume 3.07', 'volume 3', 'volume 4.0', `volume 3.${'9'.repeat(30)}`, `volume ${'3'.repeat(30)}.0`, 'volume 2.5', 'compute 2.1', 'volume', 'volume 3.70, volume 3.1'),
    printable.map((s) => `volume ${s}`),
  );
  const token = fc.oneof(
    { weight: 6, arbitrary: fc.constant('admin:admin') },
    { weight: 2, arbitrary: fc.constantFrom('user:admin', ':admin', 'admin', 'admin:other', ' admin:admin ', 'admin:admin:admin') },
    { weight: 1, arbitrary: printable },
  );
  const origin = fc.constantFrom('http://evil.example', 'null', `http://127.0.0.1:${port}`, `http://localhost:${port}`);
  return fc
    .record({
      // Absent now and then: a client that sends no Host at all.
      host: fc.option(host, { freq: 30, nil: undefined }),
      'content-type': fc.option(contentType, { freq: 5, nil: undefined }),
      'openstack-api-version': fc.option(version, { freq: 2, nil: undefined }),
      'x-auth-token': fc.option(token, { freq: 4, nil: undefined }),
      origin: fc.oneof({ weight: 14, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: origin }),
    })
    .map((h) => Object.fromEntries(Object.entries(h).filter(([, v]) => v !== undefined)) as Record<string, string>);
}

const OTHER_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'] as const;

/** A request against one of {@link ROUTES} on `port`. */
export function fuzzRequest(port: number): fc.Arbitrary<FuzzRequest> {
  return fc.constantFrom(...ROUTES).chain((route) =>
    fc
      .record({
        method: fc.oneof({ weight: 9, arbitrary: fc.constant(route.method) }, { weight: 1, arbitrary: fc.constantFrom(...OTHER_METHODS) }),
        path: route.path,
        query: query(route.queryKeys ?? []),
        // Half of the requests come from a well-behaved client, so the rest of the request gets past the headers.
        headers: fc.oneof(fc.constant({ host: `127.0.0.1:${port}`, 'content-type': 'application/json', 'x-auth-token': 'admin:admin', 'openstack-api-version': 'volume 3.70' }), headers(port)),
        body: route.body === undefined ? fc.option(bodyFrom({ a: 1 }), { freq: 8, nil: undefined }) : bodyFrom(route.body),
        pick: fc.nat(),
      })
      .map(({ method, path, query: q, headers: h, body, pick }) => ({
        route: route.name,
        method,
        path: `${path}${q}`,
        headers: h,
        body: method === 'GET' || method === 'HEAD' ? undefined : body,
        pick,
      })),
  );
}
