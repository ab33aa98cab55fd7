import { describe, expect, it } from 'vitest';
import { BackendUnavailableError, ClosedError } from '../../../src/errors.js';
import { ManualClock } from '../../../src/lifecycle/clock.js';
import { LocalSession } from '../../../src/session/local-session.js';
import type { Session } from '../../../src/session/session.js';
import { SessionSupervisor, staticSessionSource } from '../../../src/session/session-source.js';

/** A session a test ends by hand (its state machine is LocalSession's). */
class FakeSession extends LocalSession {
  lose(): Promise<void> {
    return this.close();
  }
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

describe('SessionSupervisor', () => {
  it('opens a session, and a new incarnation after the current one ends', async () => {
    const opened: FakeSession[] = [];
    const clock = new ManualClock();
    const supervisor = new SessionSupervisor({
      open: async () => {
        const s = new FakeSession(`h@b`);
        opened.push(s);
        return s;
      },
      clock,
      random: () => 0.5,
      initialBackoffMs: 100,
    });
    const seen: Session[] = [];
    supervisor.onSession((s) => seen.push(s));
    supervisor.start();
    const first = await supervisor.next();
    expect(first).toBe(opened[0]);
    expect(supervisor.current()).toBe(first);
    await opened[0]!.lose();
    expect(supervisor.current()).toBeUndefined();
    const pending = supervisor.next();
    await flush();
    expect(opened).toHaveLength(1); // a short jittered pause before the next incarnation
    await clock.advance(50);
    const second = await pending;
    expect(second).toBe(opened[1]);
    expect(second.incarnation).not.toBe(first.incarnation);
    expect(seen).toEqual([first, second]);
    await supervisor.close();
    expect(second.state).toBe('closed');
  });

  it('once retired, keeps the current session until close but opens no new incarnation when it ends', async () => {
    const opened: FakeSession[] = [];
    const clock = new ManualClock();
    const supervisor = new SessionSupervisor({
      open: async () => {
        const s = new FakeSession('h@b');
        opened.push(s);
        return s;
      },
      clock,
      random: () => 0.5,
      initialBackoffMs: 100,
    });
    supervisor.start();
    const first = await supervisor.next();
    supervisor.retire();
    supervisor.retire(); // idempotent
    expect(supervisor.current()).toBe(first);
    await opened[0]!.lose();
    await clock.advance(1_000);
    await flush();
    expect(opened).toHaveLength(1);
    await expect(supervisor.next()).rejects.toBeInstanceOf(ClosedError);
    await supervisor.close();
  });

  it('retire() rejects whoever waits for a session and stops a failing open from retrying', async () => {
    const clock = new ManualClock();
    let attempts = 0;
    const supervisor = new SessionSupervisor({
      open: async () => {
        attempts++;
        throw new BackendUnavailableError('etcd', 'down');
      },
      clock,
      random: () => 1,
      initialBackoffMs: 100,
    });
    supervisor.start();
    const waiting = supervisor.next();
    await flush();
    expect(attempts).toBe(1);
    supervisor.retire();
    await expect(waiting).rejects.toBeInstanceOf(ClosedError);
    await clock.advance(10_000);
    await flush();
    expect(attempts).toBe(1);
    await supervisor.close();
  });

  it('retries a failing open with exponential back-off on the clock', async () => {
    const clock = new ManualClock();
    let attempts = 0;
    const supervisor = new SessionSupervisor({
      open: async () => {
        attempts++;
        if (attempts <= 3) throw new BackendUnavailableError('etcd', 'down');
        return new FakeSession('h@b');
      },
      clock,
      random: () => 1,
      initialBackoffMs: 100,
      maxBackoffMs: 300,
    });
    supervisor.start();
    await flush();
    expect(attempts).toBe(1);
    await clock.advance(99);
    expect(attempts).toBe(1);
    await clock.advance(1);
    await flush();
    expect(attempts).toBe(2);
    await clock.advance(200);
    await flush();
    expect(attempts).toBe(3);
    await clock.advance(299);
    await flush();
    expect(attempts).toBe(3); // capped at 300, not 400
    await clock.advance(1);
    await flush();
    expect(attempts).toBe(4);
    expect(supervisor.current()).toBeDefined();
    await supervisor.close();
  });

  it('next() waits for a session, honours its signal, and fails once closed', async () => {
    // An open that only ends through its signal (EtcdSession.open also has a call deadline).
    const open = (signal: AbortSignal): Promise<Session> =>
      new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
    const supervisor = new SessionSupervisor({ open, clock: new ManualClock() });
    supervisor.start();
    const controller = new AbortController();
    const waiting = supervisor.next(controller.signal);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'ABORTED' });
    const pending = supervisor.next();
    const closing = supervisor.close();
    await expect(pending).rejects.toBeInstanceOf(ClosedError);
    await closing;
    await expect(supervisor.next()).rejects.toBeInstanceOf(ClosedError);
  });
});

describe('LocalSession and the static source', () => {
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
    const source = staticSessionSource(a);
    expect(await source.next()).toBe(a);
    await source.close();
    expect(a.state).toBe('closed');
    expect(a.signal.aborted).toBe(true);
    expect(a.safeUntil()).toBe(0);
    expect(changes).toEqual(['held->closed']);
    await expect(source.next()).rejects.toBeInstanceOf(ClosedError);
  });
});
