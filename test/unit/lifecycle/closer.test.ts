import { describe, expect, it } from 'vitest';
import { Closer } from '../../../src/lifecycle/closer.js';

describe('Closer', () => {
  it('runs the quiesce steps first, in the order added, then the closes in reverse — once', async () => {
    const ran: string[] = [];
    const closer = new Closer();
    closer.quiesce('readiness off', () => void ran.push('q:readiness'));
    closer.add('store', () => void ran.push('store'));
    const bus = closer.use('bus', { close: async () => void ran.push('bus') });
    closer.quiesce('stop accepting', () => void ran.push('q:accepting'));
    closer.add('worker', async () => void ran.push('worker'));
    expect(closer.closed).toBe(false);
    const first = closer.close();
    expect(closer.close()).toBe(first);
    await first;
    await closer.close();
    expect(ran).toEqual(['q:readiness', 'q:accepting', 'worker', 'bus', 'store']);
    expect(closer.closed).toBe(true);
    expect(typeof bus.close).toBe('function');
  });

  it('runs every step even when some fail, then rejects with all their errors', async () => {
    const ran: string[] = [];
    const closer = new Closer();
    closer.add('a', () => void ran.push('a'));
    closer.add('b', () => {
      throw new Error('b failed');
    });
    closer.add('c', async () => {
      ran.push('c');
      throw new Error('c failed');
    });
    const err = await closer.close().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AggregateError);
    expect((err as AggregateError).errors.map((e: Error) => e.message)).toEqual(['c failed', 'b failed']);
    expect(ran).toEqual(['c', 'a']);
  });

  it('closes on `await using`', async () => {
    const ran: string[] = [];
    {
      await using closer = new Closer();
      closer.add('x', () => void ran.push('x'));
    }
    expect(ran).toEqual(['x']);
  });
});
