import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { DataDirLock } from '../../../src/locks/data-dir-lock.js';
import { DataDirLockedError } from '../../../src/locks/errors.js';
import { lockOrder } from '../../../src/locks/lock-service.js';
import { LocalLockService } from '../../../src/locks/local-lock-service.js';
import { LockMetrics, lockTypeOf } from '../../../src/locks/metrics.js';

describe('lockTypeOf keeps the lock_type label a small enum', () => {
  it.each([
    ['3f2a1b4c-0000-4000-8000-00000000000a-delete_volume', 'delete_volume'],
    ['3f2a1b4c-0000-4000-8000-00000000000a-delete_snapshot', 'delete_snapshot'],
    ['3f2a1b4c-0000-4000-8000-00000000000a-detach_volume', 'detach_volume'],
    ['vol-1-delete_volume', 'delete_volume'],
    ['3f2a1b4c-0000-4000-8000-00000000000a', 'volume'],
    ['3f2a1b4c-0000-4000-8000-00000000000a-some_new_thing', 'other'],
    ['attachment_update-3f2a-host1', 'other'],
    ['whatever', 'other'],
  ])('%s → %s', (name, type) => {
    expect(lockTypeOf(name)).toBe(type);
  });
});

describe('lockOrder', () => {
  it('sorts, de-duplicates and validates', () => {
    expect(lockOrder(['b', 'a', 'b', 'c'])).toEqual(['a', 'b', 'c']);
    expect(lockOrder('x')).toEqual(['x']);
    expect(() => lockOrder(['a', 'b/c'])).toThrow(/invalid lock name/);
  });
});

describe('LockMetrics', () => {
  it('shows the oldest acquired timestamp only while a lock of that type is held', async () => {
    const registry = new Registry();
    const service = new LocalLockService({ metrics: new LockMetrics(registry) });
    const id = '3f2a1b4c-0000-4000-8000-00000000000a';
    const first = await service.acquire(`${id}-delete_volume`);
    await new Promise((r) => setTimeout(r, 5));
    const second = await service.acquire(`${id.replace('a', 'b')}-delete_volume`);
    let text = await registry.metrics();
    expect(text).toContain(`hearth_locks_held{lock_type="delete_volume"} 2`);
    expect(text).toContain(`hearth_lock_oldest_acquired_timestamp_seconds{lock_type="delete_volume"} ${first.acquiredAt / 1_000}`);
    await first.release();
    text = await registry.metrics();
    expect(text).toContain(`hearth_lock_oldest_acquired_timestamp_seconds{lock_type="delete_volume"} ${second.acquiredAt / 1_000}`);
    await second.release();
    text = await registry.metrics();
    expect(text).toContain(`hearth_locks_held{lock_type="delete_volume"} 0`);
    expect(text).not.toMatch(/hearth_lock_oldest_acquired_timestamp_seconds\{/);
    expect(text).toContain('hearth_lock_hold_seconds_count{lock_type="delete_volume"} 2');
    expect(text).toContain('hearth_lock_wait_seconds_count{lock_type="delete_volume",result="acquired"} 2');
    const timeoutHolder = await service.acquire(id);
    await service.acquire(id, { timeoutMs: 5 }).catch(() => undefined);
    expect(await registry.metrics()).toContain('hearth_lock_wait_seconds_count{lock_type="volume",result="timeout"} 1');
    await timeoutHolder.release();
  });
});

describe('DataDirLock', () => {
  it('lets one holder own a data dir; a second fails at once with DATA_DIR_LOCKED naming the holder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-datadir-'));
    const first = await DataDirLock.acquire(dir);
    expect(first.held).toBe(true);
    const started = Date.now();
    const err = (await DataDirLock.acquire(dir).catch((e: unknown) => e)) as DataDirLockedError;
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(err).toBeInstanceOf(DataDirLockedError);
    expect(err.code).toBe('DATA_DIR_LOCKED');
    expect(err.message).toContain(dir);
    expect(err.message).toContain(`pid ${process.pid}`);
    await first.release();
    await first.release();
    expect(first.held).toBe(false);
    expect(await readdir(dir)).toEqual([]);
    const second = await DataDirLock.acquire(dir);
    await second.release();
  });
});
