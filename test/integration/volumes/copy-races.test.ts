// Issue 16's races on real processes: a source deleted while copies of it are requested, and a
// snapshot deleted while volumes are created from it — on etcd with three `hearth serve`
// processes (each an API and a worker: the attempts are decided by several OS processes' CAS
// writes against one etcd), and on a single node (SQLite) with several concurrent clients. The
// fake driver's latency makes every copy last long enough to be raced.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import { raceDeleteAgainstCopies, type RaceTally } from '../../support/copy-races.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { VolumeClient } from '../../support/volume-client.js';

const RACE = { rounds: 6, copies: 10, deletes: 5, staggerMs: 60, timeoutMs: 60_000 };

function checkTally(tally: RaceTally, what: string): void {
  console.log(`[copy-races] ${what}: ${JSON.stringify(tally)}`);
  // The race was really run both ways: copies were accepted and refused, deletes refused for holds.
  expect(tally.copiesAccepted).toBeGreaterThan(0);
  expect(tally.copiesRefused).toBeGreaterThan(0);
  expect(tally.deletesRefusedForHolds).toBeGreaterThan(0);
}

describe('copies raced by deletes of their source: etcd, three hearth processes', () => {
  let etcd: EtcdTestContext;
  let amqp: AmqpTestContext;
  let journal: string;
  const members: HearthProcess[] = [];
  let clients: VolumeClient[];

  beforeAll(async () => {
    etcd = useEtcd();
    amqp = await useAmqp();
    journal = join(await mkdtemp(join(tmpdir(), 'hearth-copy-races-')), 'journal.jsonl');
    const base = {
      HEARTH_ETCD_ENDPOINTS: etcd.endpoints.join(','),
      HEARTH_ETCD_PREFIX: etcd.prefix,
      HEARTH_AMQP_URL: amqp.url,
      HEARTH_AMQP_PREFIX: amqp.prefix,
      HEARTH_CLUSTER: 'races',
      HEARTH_BACKEND: 'fake',
      HEARTH_DRIVER_NAME: 'fake',
      HEARTH_DRIVER_FAKE_JOURNAL: journal,
      HEARTH_DRIVER_FAKE_LATENCY_MS: '250',
    };
    members.push(...(await Promise.all([1, 2, 3].map((n) => startHearth({ name: `copy-races-${n}`, env: { ...base, HEARTH_HOST: `m${n}` } })))));
    clients = members.map((m) => new VolumeClient(m.apiUrl));
  });
  afterAll(async () => {
    await Promise.all(members.map((m) => m.stop()));
    await etcd?.close();
    await amqp?.close();
  });

  it('delete a volume while clones of it are requested through three API processes', async () => {
    checkTally(await raceDeleteAgainstCopies(clients, journal, 'volume', RACE), 'etcd, clones');
  });

  it('delete a snapshot while volumes are created from it through three API processes', async () => {
    checkTally(await raceDeleteAgainstCopies(clients, journal, 'snapshot', RACE), 'etcd, from snapshot');
  });
});

describe('copies raced by deletes of their source: single node (SQLite), concurrent clients', () => {
  let journal: string;
  let hearth: HearthProcess;
  let clients: VolumeClient[];

  beforeAll(async () => {
    journal = join(await mkdtemp(join(tmpdir(), 'hearth-copy-races-')), 'journal.jsonl');
    hearth = await startHearth({
      name: 'copy-races-single',
      env: { HEARTH_DRIVER_NAME: 'fake', HEARTH_DRIVER_FAKE_JOURNAL: journal, HEARTH_DRIVER_FAKE_LATENCY_MS: '250' },
    });
    // Several clients, each its own connection pool: concurrent requests on the one API.
    clients = [1, 2, 3, 4].map(() => new VolumeClient(hearth.apiUrl));
  });
  afterAll(async () => {
    await hearth?.stop();
  });

  it('delete a volume while clones of it are requested', async () => {
    checkTally(await raceDeleteAgainstCopies(clients, journal, 'volume', RACE), 'SQLite, clones');
  });

  it('delete a snapshot while volumes are created from it', async () => {
    checkTally(await raceDeleteAgainstCopies(clients, journal, 'snapshot', RACE), 'SQLite, from snapshot');
  });
});
