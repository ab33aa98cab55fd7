import { describe, expect, it } from 'vitest';
import { type BackendOutage, backendDownRow, downWindows } from '../../chaos/backend-invariants.js';
import { decodeHistory } from '../../chaos/history.js';
import type { HistoryEvent } from '../../chaos/invariants.js';

const A = 'w1@be:a1';
const B = 'w2@be:b1';
const own = (incarnation: string, aliveRevision: number) => ({ incarnation, aliveRevision });
const alive = (revision: number, host: string, incarnation: string, createRevision: number, backend?: 'up' | 'down'): HistoryEvent => ({ revision, kind: 'alive-put', host, incarnation, createRevision, ...(backend ? { backend } : {}) });
const claim = (revision: number, key: string, owner: string, aliveRevision: number): HistoryEvent => ({ revision, kind: 'op-put', key, owner: own(owner, aliveRevision), prevOwner: null });

/** w1's backend reports down at 10 and 12 (a heartbeat later), up at 20; w2 stays up. */
const history: HistoryEvent[] = [
  alive(2, 'w1@be', A, 2, 'up'),
  alive(3, 'w2@be', B, 3, 'up'),
  alive(10, 'w1@be', A, 2, 'down'),
  alive(12, 'w1@be', A, 2, 'down'),
  alive(20, 'w1@be', A, 2, 'up'),
];
const outage: BackendOutage = { host: 'w1', from: 1_000, to: 5_000, seenDownAt: 1_400, seenUpAt: 5_600 };
const NAME = 'a worker whose backend was down took no new job, and came back by itself';

describe('backend-down windows', () => {
  it('run from the first down report to the next report that is not down, settling at the second', () => {
    expect(downWindows(history)).toEqual([{ incarnation: A, host: 'w1@be', from: 10, to: 20, settledFrom: 12 }]);
  });

  it('end with the alive key, and stay open to the end of the history', () => {
    expect(downWindows([alive(5, 'w1@be', A, 2, 'down'), { revision: 8, kind: 'alive-delete', host: 'w1@be' }, alive(9, 'w2@be', B, 9, 'down')])).toEqual([
      { incarnation: A, host: 'w1@be', from: 5, to: 8, settledFrom: Number.POSITIVE_INFINITY },
      { incarnation: B, host: 'w2@be', from: 9, to: Number.POSITIVE_INFINITY, settledFrom: Number.POSITIVE_INFINITY },
    ]);
  });

  it('are read from the backend report in the alive entry', () => {
    const raw = [{ type: 'put' as const, key: '/p/alive/w1@be', value: JSON.stringify({ incarnation: A, backend: { state: 'down', reason: 'x' } }), prev: null, revision: 4, createRevision: 2 }];
    expect(decodeHistory('/p', raw)).toEqual([alive(4, 'w1@be', A, 2, 'down')]);
  });
});

describe('backendDownRow', () => {
  it('passes when the worker claimed nothing inside its settled window and the others took the jobs', () => {
    // A claim at 11 was under way when the check failed; one at 21 is after it came back.
    const r = backendDownRow([...history, claim(11, 'ops/volume/v1', A, 2), claim(14, 'ops/volume/v2', B, 3), claim(21, 'ops/volume/v3', A, 2)], [outage]);
    expect(r).toMatchObject({ name: NAME, result: 'PASS' });
    expect(r.detail).toContain('1 claim(s) by the other members meanwhile');
  });

  it('fails on a claim by the worker while its backend was down', () => {
    const r = backendDownRow([...history, claim(15, 'ops/volume/v9', A, 2)], [outage]);
    expect(r.result).toBe('FAIL');
    expect(r.detail).toContain('ops/volume/v9@15 claimed by w1@be:a1');
  });

  it('fails when the API never showed it down, or never up again, or etcd has no window', () => {
    expect(backendDownRow(history, [{ host: 'w1', from: 1, to: 2, seenUpAt: 3 }]).detail).toContain('never showed backend_state down');
    expect(backendDownRow(history, [{ host: 'w1', from: 1, to: 2, seenDownAt: 3 }]).detail).toContain('never showed it up again');
    expect(backendDownRow(history.slice(0, 2), [outage])).toMatchObject({ result: 'FAIL', detail: expect.stringContaining('1 outages injected, 0 down windows') as unknown });
  });

  it('passes trivially when no outage was injected', () => {
    expect(backendDownRow([], [])).toMatchObject({ result: 'PASS', detail: 'no backend-down fault in this run' });
  });
});
