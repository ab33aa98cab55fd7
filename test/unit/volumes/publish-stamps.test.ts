import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/lifecycle/clock.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import type { OpRecord } from '../../../src/state/records.js';
import { SQLITE_STATE_FILE, SqliteStateStore } from '../../../src/state/sqlite-state-store.js';
import { PublishStamps } from '../../../src/volumes/publish-stamps.js';
import { newVolume } from '../../contract/state-store.contract.js';

describe('publish stamps', () => {
  let dir: string;
  let store: SqliteStateStore;
  let clock: ManualClock;

  beforeEach(async () => {
    clock = new ManualClock(1_000_000);
    dir = await mkdtemp(join(tmpdir(), 'hearth-stamps-'));
    store = SqliteStateStore.open({ path: join(dir, SQLITE_STATE_FILE), clock, metrics: createStateMetrics(new Registry()) });
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const recorded = async (): Promise<OpRecord> => {
    const created = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
    if (!created.ok || !created.op) throw new Error('create failed');
    return created.op;
  };
  const publishedAt = async (op: OpRecord): Promise<number | null | undefined> => (await store.getOp({ type: op.type, id: op.id }))?.publishedAt;

  it('stamps each op no sooner than delayMs after it was added, in one batch per delayMs', async () => {
    const stamps = new PublishStamps({ store, clock, logger: silentLogger(), delayMs: 1_000 });
    const first = await recorded();
    stamps.add(first);
    await clock.advance(600);
    const second = await recorded();
    stamps.add(second);
    await clock.advance(400);
    // The batch of the first: the second, added 400 ms ago, waits for the next one.
    await expect.poll(() => publishedAt(first)).toBe(1_001_000);
    expect(await publishedAt(second)).toBeNull();
    await clock.advance(1_000);
    await expect.poll(() => publishedAt(second)).toBe(1_002_000);
    await stamps.close();
  });

  it('close sends what is pending at once', async () => {
    const stamps = new PublishStamps({ store, clock, logger: silentLogger(), delayMs: 1_000 });
    const op = await recorded();
    stamps.add(op);
    await stamps.close();
    expect(await publishedAt(op)).toBe(clock.now());
  });

  it('skip: stamps nothing (the in-process bus)', async () => {
    const stamps = new PublishStamps({ store, clock, logger: silentLogger(), delayMs: 1_000, skip: () => true });
    const op = await recorded();
    stamps.add(op);
    await clock.advance(2_000);
    await stamps.close();
    expect(await publishedAt(op)).toBeNull();
  });
});
