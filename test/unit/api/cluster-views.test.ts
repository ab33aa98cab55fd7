import { formatCinderTime } from '../../../src/api/cinder-time.js';
import { matchesHost } from '../../../src/identity.js';
import { describe, expect, it } from 'vitest';
import {
  clusterDetailJson,
  clusterSummaryJson,
  clusterUpdateJson,
  serviceJson,
} from '../../../src/api/cluster-json.js';
import { memberCounts } from '../../../src/membership/metrics.js';
import {
  type AliveMember,
  type ClusterRecord,
  decodeAlive,
  decodeCluster,
  decodeService,
  encodeRecord,
  type MembershipSnapshot,
  newClusterRecord,
  type ServiceRecord,
  serviceForJoin,
  withClusterDisabled,
} from '../../../src/membership/records.js';
import {
  buildClusterViews,
  buildServiceViews,
  type ClusterView,
  clusterMatches,
  findCluster,
  parseBool,
  parseClusterFilters,
  serviceMatches,
} from '../../../src/api/cluster-views.js';
import { InvalidInputError } from '../../../src/errors.js';

const T0 = Date.UTC(2016, 5, 1, 2, 46, 28, 123);
const VOL = 'cinder-volume';

function cluster(name: string, over: Partial<ClusterRecord> = {}): ClusterRecord {
  return { ...newClusterRecord(name, VOL, T0), ...over };
}

function service(host: string, clusterName: string | null, over: Partial<ServiceRecord> = {}): ServiceRecord {
  return {
    binary: VOL,
    host,
    cluster: clusterName,
    zone: 'nova',
    version: '0.1.0',
    disabled: false,
    disabledReason: null,
    frozen: false,
    replicationStatus: 'not-capable',
    activeBackendId: null,
    createdAtMs: T0,
    startedAtMs: T0,
    heartbeatAtMs: T0,
    modifiedAtMs: null,
    ...over,
  };
}

function alive(host: string, clusterName: string, heartbeatAtMs = T0 + 5_000, aliveRevision = '7'): AliveMember {
  return { host, cluster: clusterName, incarnation: `${host}:1a`, heartbeatAtMs, aliveRevision };
}

describe('formatCinderTime', () => {
  it('writes UTC with six fractional digits and no zone', () => {
    expect(formatCinderTime(T0)).toBe('2016-06-01T02:46:28.123000');
    expect(formatCinderTime(Date.UTC(2017, 0, 2, 3, 4, 5, 0))).toBe('2017-01-02T03:04:05.000000');
  });
});

describe('buildClusterViews', () => {
  const snapshot: MembershipSnapshot = {
    clusters: [cluster('b@rbd'), cluster('a@rbd', { disabled: true, disabledReason: 'maint', updatedAtMs: T0 + 1 })],
    services: [
      service('n1@rbd', 'a@rbd', { heartbeatAtMs: T0 + 1_000 }),
      service('n2@rbd', 'a@rbd', { heartbeatAtMs: T0 + 9_000 }),
      service('n3@rbd', 'a@rbd', { heartbeatAtMs: null }),
      service('lone@rbd', null),
      service('n4@rbd', 'a@rbd', { binary: 'cinder-backup' }),
    ],
    alive: [alive('n1@rbd', 'a@rbd', T0 + 10_000)],
  };

  it('counts hosts and down hosts from alive entries, not timestamps', () => {
    const views = buildClusterViews(snapshot);
    expect(views.map((v) => v.name)).toEqual(['a@rbd', 'b@rbd']);
    const a = views[0]!;
    expect(a).toMatchObject({ up: true, numHosts: 3, numDownHosts: 2, disabled: true, disabledReason: 'maint', updatedAtMs: T0 + 1 });
    // n2's old heartbeat (T0+9s) is newer than nothing but older than n1's live one (T0+10s).
    expect(a.lastHeartbeatMs).toBe(T0 + 10_000);
  });

  it('is down with no member alive, and has no heartbeat with no members', () => {
    const b = buildClusterViews(snapshot)[1]!;
    expect(b).toMatchObject({ up: false, numHosts: 0, numDownHosts: 0, lastHeartbeatMs: null });
    const down = buildClusterViews({ ...snapshot, alive: [] })[0]!;
    expect(down).toMatchObject({ up: false, numDownHosts: 3, lastHeartbeatMs: T0 + 9_000 });
  });

  it('counts a dead member\'s last heartbeat (Cinder\'s max over services)', () => {
    const v = buildClusterViews({ ...snapshot, alive: [alive('n1@rbd', 'a@rbd', T0 + 2_000)] })[0]!;
    expect(v.lastHeartbeatMs).toBe(T0 + 9_000);
  });

  it('ignores alive entries of hosts that are not members', () => {
    const v = buildClusterViews({ ...snapshot, alive: [alive('stranger@rbd', 'a@rbd')] })[0]!;
    expect(v).toMatchObject({ up: false, numDownHosts: 3 });
  });
});

describe('buildServiceViews', () => {
  it('sorts by binary then host and takes state from alive entries', () => {
    const views = buildServiceViews({
      clusters: [],
      services: [service('z@rbd', 'c@rbd'), service('a@rbd', 'c@rbd'), service('b@rbd', null, { binary: 'cinder-backup' })],
      alive: [alive('z@rbd', 'c@rbd', T0 + 3_000)],
    });
    expect(views.map((v) => `${v.binary} ${v.host} ${v.up}`)).toEqual(['cinder-backup b@rbd false', 'cinder-volume a@rbd false', 'cinder-volume z@rbd true']);
    expect(views[2]!.updatedAtMs).toBe(T0 + 3_000);
  });

  it('shows the operator change time when it is newer than the heartbeat (Cinder\'s modified_at rule)', () => {
    const [v] = buildServiceViews({ clusters: [], services: [service('a@rbd', null, { modifiedAtMs: T0 + 60_000 })], alive: [] });
    expect(v!.updatedAtMs).toBe(T0 + 60_000);
    const [w] = buildServiceViews({ clusters: [], services: [service('a@rbd', null, { heartbeatAtMs: null })], alive: [] });
    expect(w!.updatedAtMs).toBeNull();
  });
});

describe('cluster JSON by microversion', () => {
  const view: ClusterView = {
    name: 'mycluster@lvm',
    binary: VOL,
    up: true,
    disabled: false,
    disabledReason: null,
    numHosts: 2,
    numDownHosts: 1,
    lastHeartbeatMs: T0,
    createdAtMs: T0,
    updatedAtMs: null,
    frozen: false,
    replicationStatus: 'not-capable',
    activeBackendId: null,
  };

  it('summary: four keys below 3.26, replication_status from 3.26', () => {
    expect(clusterSummaryJson(view, { replication: false })).toEqual({ name: 'mycluster@lvm', binary: VOL, state: 'up', status: 'enabled' });
    expect(clusterSummaryJson(view, { replication: true })).toEqual({
      name: 'mycluster@lvm',
      binary: VOL,
      state: 'up',
      status: 'enabled',
      replication_status: 'not-capable',
    });
  });

  it('detail: counts, times ("" when missing) and reason; replication fields only from 3.26', () => {
    const below = clusterDetailJson(view, { replication: false });
    expect(below).toEqual({
      name: 'mycluster@lvm',
      binary: VOL,
      state: 'up',
      status: 'enabled',
      num_hosts: 2,
      num_down_hosts: 1,
      last_heartbeat: '2016-06-01T02:46:28.123000',
      created_at: '2016-06-01T02:46:28.123000',
      updated_at: '',
      disabled_reason: null,
    });
    expect(clusterDetailJson(view, { replication: true })).toEqual({ ...below, replication_status: 'not-capable', frozen: false, active_backend_id: null });
    expect(clusterDetailJson({ ...view, lastHeartbeatMs: null, up: false, disabled: true, disabledReason: 'x' }, { replication: false })).toMatchObject({
      last_heartbeat: '',
      state: 'down',
      status: 'disabled',
      disabled_reason: 'x',
    });
  });

  it('update: the summary plus disabled_reason', () => {
    expect(clusterUpdateJson({ ...view, disabled: true, disabledReason: 'maint' }, { replication: false })).toEqual({
      cluster: { name: 'mycluster@lvm', binary: VOL, state: 'up', status: 'disabled', disabled_reason: 'maint' },
    });
    expect(clusterUpdateJson(view, { replication: true }).cluster).toEqual({
      name: 'mycluster@lvm',
      binary: VOL,
      state: 'up',
      status: 'enabled',
      replication_status: 'not-capable',
      disabled_reason: null,
    });
  });
});

describe('service JSON by microversion', () => {
  const [up] = buildServiceViews({ clusters: [], services: [service('n1@lvm', 'c@lvm', { id: 7 })], alive: [alive('n1@lvm', 'c@lvm', T0)] });
  const [down] = buildServiceViews({ clusters: [], services: [service('n2@lvm', 'c@lvm', { disabled: true, disabledReason: 'r' })], alive: [] });
  const [backup] = buildServiceViews({ clusters: [], services: [service('b@x', null, { binary: 'cinder-backup', heartbeatAtMs: null })], alive: [] });

  it('3.0: no cluster, no backend_state; replication fields on volume rows only', () => {
    const shape = { cluster: false, backendState: false };
    expect(serviceJson(up!, shape, VOL)).toEqual({
      id: 7,
      binary: VOL,
      host: 'n1@lvm',
      zone: 'nova',
      status: 'enabled',
      state: 'up',
      updated_at: '2016-06-01T02:46:28.123000',
      disabled_reason: null,
      replication_status: 'not-capable',
      active_backend_id: null,
      frozen: false,
    });
    expect(serviceJson(backup!, shape, VOL)).toEqual({
      id: null,
      binary: 'cinder-backup',
      host: 'b@x',
      zone: 'nova',
      status: 'enabled',
      state: 'down',
      updated_at: null,
      disabled_reason: null,
    });
  });

  it('3.7 adds cluster; 3.49 adds backend_state (up, or null when down)', () => {
    expect(serviceJson(up!, { cluster: true, backendState: false }, VOL)).toMatchObject({ cluster: 'c@lvm' });
    expect(serviceJson(up!, { cluster: true, backendState: false }, VOL)).not.toHaveProperty('backend_state');
    expect(serviceJson(up!, { cluster: true, backendState: true }, VOL)).toMatchObject({ backend_state: 'up' });
    expect(serviceJson(down!, { cluster: true, backendState: true }, VOL)).toMatchObject({
      backend_state: null,
      state: 'down',
      status: 'disabled',
      disabled_reason: 'r',
    });
    expect(serviceJson(backup!, { cluster: true, backendState: true }, VOL)).not.toHaveProperty('backend_state');
  });
});

describe('matchesHost (Cinder _filter_host)', () => {
  it.each([
    ['mycluster@lvm', 'mycluster', true],
    ['mycluster#pool', 'mycluster', true],
    ['mycluster', 'mycluster', true],
    ['myclusterX@lvm', 'mycluster', false],
    ['mycluster@lvm', 'mycluster@lvm', true],
    ['mycluster@lvm#p1', 'mycluster@lvm', true],
    ['mycluster@lvm2', 'mycluster@lvm', false],
    ['mycluster@lvm#p1', 'mycluster@lvm#p1', true],
    ['mycluster@lvm#p2', 'mycluster@lvm#p1', false],
    ['mycluster@lvm', 'mycluster@lvm#p1', false],
  ])('%s against %s → %s', (candidate, filter, expected) => {
    expect(matchesHost(candidate, filter)).toBe(expected);
  });

  it('never matches a missing value', () => {
    expect(matchesHost(null, 'x')).toBe(false);
  });
});

describe('parseBool (oslo is_valid_boolstr)', () => {
  it.each(['1', 't', 'true', 'True', 'ON', 'y', 'yes'])('%s is true', (s) => expect(parseBool('k', s)).toBe(true));
  it.each(['0', 'f', 'false', 'FALSE', 'off', 'n', 'no'])('%s is false', (s) => expect(parseBool('k', s)).toBe(false));
  it.each(['', 'maybe', '2', 'truee'])('%j is refused with Cinder\'s message', (s) => {
    expect(() => parseBool('is_up', s)).toThrow(InvalidInputError);
    expect(() => parseBool('is_up', s)).toThrow(`Value '${s}' for 'is_up' is not a boolean.`);
  });
});

describe('parseClusterFilters', () => {
  it('parses every base key', () => {
    expect(
      parseClusterFilters({ name: 'c', binary: VOL, is_up: 'true', disabled: 'False', num_hosts: '2', num_down_hosts: '0' }, false),
    ).toEqual({ name: 'c', binary: VOL, isUp: true, disabled: false, numHosts: 2, numDownHosts: 0 });
  });

  it('allows the replication keys only from 3.26', () => {
    const q = { replication_status: 'enabled', frozen: 'yes', active_backend_id: 'b2' };
    expect(parseClusterFilters(q, true)).toEqual({ replicationStatus: 'enabled', frozen: true, activeBackendId: 'b2' });
    expect(() => parseClusterFilters(q, false)).toThrow('Invalid filter keys: replication_status, frozen, active_backend_id');
  });

  it('refuses unknown keys with Cinder\'s message', () => {
    expect(() => parseClusterFilters({ name: 'c', colour: 'red' }, true)).toThrow('Invalid input received: Invalid filter keys: colour');
  });

  it('refuses malformed booleans and counts', () => {
    expect(() => parseClusterFilters({ disabled: 'perhaps' }, false)).toThrow("Value 'perhaps' for 'disabled' is not a boolean.");
    expect(() => parseClusterFilters({ num_hosts: 'two' }, false)).toThrow("'num_hosts' is not an integer");
  });

  it('takes the last of repeated keys', () => {
    expect(parseClusterFilters({ name: ['a', 'b'] }, false)).toEqual({ name: 'b' });
  });
});

describe('clusterMatches and serviceMatches', () => {
  const views = buildClusterViews({
    clusters: [cluster('a@rbd', { disabled: true }), cluster('a@lvm'), cluster('b@rbd', { frozen: true, replicationStatus: 'enabled', activeBackendId: 's2' })],
    services: [service('n1@rbd', 'a@rbd'), service('n2@rbd', 'a@rbd'), service('n3@lvm', 'a@lvm')],
    alive: [alive('n1@rbd', 'a@rbd'), alive('n3@lvm', 'a@lvm')],
  });
  const names = (f: Parameters<typeof clusterMatches>[1]): string[] => views.filter((v) => clusterMatches(v, f)).map((v) => v.name);

  it('filters by each key', () => {
    expect(names({})).toEqual(['a@lvm', 'a@rbd', 'b@rbd']);
    expect(names({ name: 'a' })).toEqual(['a@lvm', 'a@rbd']);
    expect(names({ name: 'a@rbd' })).toEqual(['a@rbd']);
    expect(names({ binary: 'cinder-backup' })).toEqual([]);
    expect(names({ isUp: true })).toEqual(['a@lvm', 'a@rbd']);
    expect(names({ isUp: false })).toEqual(['b@rbd']);
    expect(names({ disabled: true })).toEqual(['a@rbd']);
    expect(names({ numHosts: 2 })).toEqual(['a@rbd']);
    expect(names({ numDownHosts: 1 })).toEqual(['a@rbd']);
    expect(names({ numDownHosts: 0 })).toEqual(['a@lvm', 'b@rbd']);
    expect(names({ frozen: true })).toEqual(['b@rbd']);
    expect(names({ replicationStatus: 'enabled' })).toEqual(['b@rbd']);
    expect(names({ activeBackendId: 's2' })).toEqual(['b@rbd']);
    expect(names({ name: 'a', disabled: false })).toEqual(['a@lvm']);
  });

  it('finds a cluster by exact name and binary only', () => {
    expect(findCluster(views, 'a@rbd', VOL)?.name).toBe('a@rbd');
    expect(findCluster(views, 'a', VOL)).toBeUndefined();
    expect(findCluster(views, 'a@rbd', 'cinder-backup')).toBeUndefined();
  });

  it('filters services by host (fuzzy) and binary; empty filters pass', () => {
    const services = buildServiceViews({ clusters: [], services: [service('n1@rbd', null), service('n1@lvm', null), service('n2@rbd', null)], alive: [] });
    const hosts = (f: Parameters<typeof serviceMatches>[1]): string[] => services.filter((v) => serviceMatches(v, f)).map((v) => v.host);
    expect(hosts({ host: 'n1' })).toEqual(['n1@lvm', 'n1@rbd']);
    expect(hosts({ host: 'n1@rbd' })).toEqual(['n1@rbd']);
    expect(hosts({ binary: 'cinder-backup' })).toEqual([]);
    expect(hosts({ host: '', binary: '' })).toEqual(['n1@lvm', 'n1@rbd', 'n2@rbd']);
  });
});

describe('records', () => {
  it('round-trip through their codecs', () => {
    const c = cluster('a@rbd', { disabledReason: 'x', updatedAtMs: 5 });
    expect(decodeCluster(encodeRecord(c))).toEqual(c);
    const s = service('n1@rbd', 'a@rbd', { modifiedAtMs: 9 });
    expect(decodeService(encodeRecord(s))).toEqual(s);
    const a = { host: 'n1@rbd', cluster: 'a@rbd', incarnation: 'n1@rbd:1', heartbeatAtMs: 3 };
    expect(decodeAlive(encodeRecord(a))).toEqual(a);
  });

  it('refuse malformed values clearly', () => {
    expect(() => decodeCluster('nope')).toThrow('cluster record is not valid JSON');
    expect(() => decodeCluster('[]')).toThrow('cluster record is not an object');
    expect(() => decodeService(JSON.stringify({ ...service('h', null), disabled: 'no' }))).toThrow('disabled must be a boolean');
    expect(() => decodeAlive(JSON.stringify({ host: 'h', cluster: 'c', incarnation: 1, heartbeatAtMs: 1 }))).toThrow('incarnation must be a string');
  });

  it('serviceForJoin: a new host starts enabled with the cluster\'s replication state', () => {
    const c = cluster('a@rbd', { frozen: true, replicationStatus: 'failed-over', activeBackendId: 's2' });
    const s = serviceForJoin(undefined, c, { binary: VOL, host: 'n1@rbd', cluster: 'a@rbd', zone: 'z1', version: '1.0', nowMs: 42 });
    expect(s).toEqual({
      binary: VOL,
      host: 'n1@rbd',
      cluster: 'a@rbd',
      zone: 'z1',
      version: '1.0',
      disabled: false,
      disabledReason: null,
      frozen: true,
      replicationStatus: 'failed-over',
      activeBackendId: 's2',
      createdAtMs: 42,
      startedAtMs: 42,
      heartbeatAtMs: 42,
      modifiedAtMs: null,
    });
  });

  it('serviceForJoin: a returning host keeps creation time and operator settings, moves cluster, and keeps its own error state', () => {
    const prev = service('n1@rbd', 'old@rbd', { disabled: true, disabledReason: 'r', modifiedAtMs: 7, createdAtMs: 1, replicationStatus: 'error', activeBackendId: 'x' });
    const c = cluster('a@rbd', { replicationStatus: 'enabled' });
    const s = serviceForJoin(prev, c, { binary: VOL, host: 'n1@rbd', cluster: 'a@rbd', zone: 'nova', version: '2', nowMs: 99 });
    expect(s).toMatchObject({ cluster: 'a@rbd', disabled: true, disabledReason: 'r', modifiedAtMs: 7, createdAtMs: 1, startedAtMs: 99, version: '2' });
    expect(s).toMatchObject({ replicationStatus: 'error', activeBackendId: 'x' });
    const healthy = serviceForJoin({ ...prev, replicationStatus: 'enabled' }, c, { binary: VOL, host: 'n1@rbd', cluster: 'a@rbd', zone: 'nova', version: '2', nowMs: 99 });
    expect(healthy).toMatchObject({ replicationStatus: 'enabled', activeBackendId: null });
  });

  it('withClusterDisabled stamps updatedAt and clears the reason on enable', () => {
    const c = cluster('a@rbd');
    expect(withClusterDisabled(c, true, 'maint', 5)).toMatchObject({ disabled: true, disabledReason: 'maint', updatedAtMs: 5, createdAtMs: T0 });
    expect(withClusterDisabled({ ...c, disabled: true, disabledReason: 'maint' }, false, 'ignored', 6)).toMatchObject({ disabled: false, disabledReason: null, updatedAtMs: 6 });
  });
});

describe('memberCounts', () => {
  it('counts expected (service records) and alive members per cluster', () => {
    const counts = memberCounts({
      clusters: [cluster('a@rbd'), cluster('empty@rbd')],
      services: [service('n1@rbd', 'a@rbd'), service('n2@rbd', 'a@rbd'), service('x@rbd', null), service('o@rbd', 'orphan@rbd')],
      alive: [alive('n2@rbd', 'a@rbd'), alive('x@rbd', 'none')],
    });
    expect(Object.fromEntries(counts)).toEqual({
      'a@rbd': { expected: 2, alive: 1 },
      'empty@rbd': { expected: 0, alive: 0 },
      'orphan@rbd': { expected: 1, alive: 0 },
    });
  });
});
