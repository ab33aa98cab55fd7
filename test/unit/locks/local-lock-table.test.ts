import { LocalLockService } from '../../../src/locks/local-lock-service.js';
import { LocalLockTable } from '../../../src/locks/local-lock-table.js';
import { lockTableContract } from '../../contract/lock-table.contract.js';
import { waitFor } from '../../support/wait.js';
import { describe, expect, it } from 'vitest';

const INCARNATION = 'node@be:00c0ffee';

lockTableContract('local (this process\'s lock service)', false, async () => {
  const locks = new LocalLockService({ incarnation: INCARNATION });
  return {
    table: new LocalLockTable(() => locks),
    contender: async () => ({ locks, incarnation: INCARNATION, host: 'node@be' }),
    queued: async (name, count) => void (await waitFor(() => locks.queueLength(name) >= count, { what: `${count} contenders on ${name}` })),
    close: () => locks.close(),
  };
});

describe('LocalLockTable', () => {
  it('lists nothing before the worker made its lock service (API-only process)', async () => {
    expect(await new LocalLockTable(() => undefined).list()).toEqual([]);
  });
});
