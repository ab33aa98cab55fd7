import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_CHARS, DEFAULT_MAX_KEYS, SeenCache } from '../../../src/state/etcd-seen-cache.js';

const state = (json: string, mod = '1') => ({ json, mod, create: '1', version: '1' });

describe('the etcd store\'s seen-cache', () => {
  it('is bounded by characters as well as by keys: large records evict the oldest, small ones fill up to the key bound', () => {
    const cache = new SeenCache(100, undefined, 10_000);
    for (let i = 0; i < 50; i++) cache.remember(`k${i}`, state('x'.repeat(1_000)));
    expect(cache.chars).toBeLessThanOrEqual(10_000);
    expect(cache.get('k0')).toBeUndefined();
    expect(cache.get('k49')).toMatchObject({ json: 'x'.repeat(1_000) });
    for (let i = 0; i < 500; i++) cache.remember(`s${i}`, state('{}'));
    expect(cache.get('s499')).toMatchObject({ json: '{}' });
    expect(cache.get('s399')).toBeUndefined();
    expect(cache.get('s400')).toBeDefined();
  });

  it('accounts for replaced, forgotten and absent keys', () => {
    const cache = new SeenCache(10, undefined, 1_000);
    cache.remember('a', state('x'.repeat(100)));
    const one = cache.chars;
    cache.remember('a', state('x'.repeat(100), '2'));
    expect(cache.chars).toBe(one);
    cache.remember('b', null);
    expect(cache.get('b')).toBeNull();
    cache.forget('a');
    cache.forget('b');
    cache.forget('never');
    expect(cache.chars).toBe(0);
  });

  it('keeps no more than its default bounds after a burst of writes (10,000 volumes created)', () => {
    const cache = new SeenCache();
    const record = JSON.stringify({ id: 'x'.repeat(36), name: null, status: 'available', size: 1, metadata: {}, padding: 'p'.repeat(400) });
    for (let i = 0; i < 10_000; i++) {
      cache.remember(`/hearth/resources/volume/${i}`, state(record));
      cache.remember(`/hearth/ops/volume/${i}`, null);
    }
    expect(cache.size).toBeLessThanOrEqual(DEFAULT_MAX_KEYS);
    expect(cache.chars).toBeLessThanOrEqual(DEFAULT_MAX_CHARS);
    // The most recent keys are the ones kept: the next write to them needs no read.
    expect(cache.get('/hearth/resources/volume/9999')).toMatchObject({ json: record });
    expect(cache.get('/hearth/ops/volume/9999')).toBeNull();
    expect(cache.get('/hearth/resources/volume/0')).toBeUndefined();
  });
});
