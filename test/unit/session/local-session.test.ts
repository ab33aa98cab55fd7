import { describe, expect, it } from 'vitest';
import { LocalSession } from '../../../src/session/local-session.js';

describe('LocalSession', () => {
  it('is held until closed, never distributed, with a unique incarnation', async () => {
    const a = new LocalSession('node1@rbd');
    const b = new LocalSession('node1@rbd');
    expect(a.distributed).toBe(false);
    expect(a.state).toBe('held');
    expect(a.safeUntil()).toBe(Number.POSITIVE_INFINITY);
    expect(a.incarnation).toMatch(/^node1@rbd:[0-9a-f]{16}$/);
    expect(a.incarnation).not.toBe(b.incarnation);
    const changes: string[] = [];
    a.onStateChange((c) => changes.push(`${c.previous}->${c.state}`));
    await a.close();
    await a.close();
    expect(a.state).toBe('closed');
    expect(a.signal.aborted).toBe(true);
    expect(a.safeUntil()).toBe(0);
    expect(changes).toEqual(['held->closed']);
  });
});
