import { describe, expect, it } from 'vitest';
import { LocalSession } from '../../../src/session/local-session.js';
import { describeSession } from '../../contract/session.contract.js';

describeSession('local (the process itself)', false, async () => ({ open: async (host) => new LocalSession(host), close: async () => undefined }));

describe('LocalSession specifics', () => {
  it('never times out: safe forever until closed; the incarnation is the host and 16 random hex digits', () => {
    const a = new LocalSession('node1@rbd');
    expect(a.safeUntil()).toBe(Number.POSITIVE_INFINITY);
    expect(a.incarnation).toMatch(/^node1@rbd:[0-9a-f]{16}$/);
  });
});
