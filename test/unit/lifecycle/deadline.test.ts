import { describe, expect, it } from 'vitest';
import { withDeadline } from '../../../src/lifecycle/deadline.js';

describe('withDeadline', () => {
  it('passes the outcome through and leaves no timer behind once decided', async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    await expect(withDeadline(Promise.resolve(7), 60_000, 'work')).resolves.toBe(7);
    await expect(withDeadline(Promise.reject(new Error('boom')), 60_000, 'work')).rejects.toThrow('boom');
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(before);
  });

  it('rejects when the work outlasts the deadline', async () => {
    await expect(withDeadline(new Promise(() => undefined), 20, 'closing the connection')).rejects.toThrow('closing the connection took longer than 20 ms');
  });

  it('rejects at once when the signal aborts (or was aborted), clearing its timer', async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const stop = new AbortController();
    const pending = withDeadline(new Promise(() => undefined), 60_000, 'closing the connection', stop.signal);
    stop.abort(new Error('closed'));
    await expect(pending).rejects.toThrow('closing the connection was cut short');
    await expect(withDeadline(new Promise(() => undefined), 60_000, 'again', stop.signal)).rejects.toThrow('again was cut short');
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(before);
  });
});
