// The incarnation supervisor on a manual clock, over the single-node membership (a real file)
// and sessions a test ends by hand: the retry loop of opening a session, and shutdown.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { waitFor } from '../../support/wait.js';
import { afterEach, describe, expect, it } from 'vitest';
import { BackendUnavailableError } from '../../../src/errors.js';
import { VOLUME_BINARY } from '../../../src/identity.js';
import type { IncarnationEvent } from '../../../src/incarnation/incarnation.js';
import { IncarnationSupervisor } from '../../../src/incarnation/supervisor.js';
import { ManualClock } from '../../../src/lifecycle/clock.js';
import { Backoff } from '../../../src/lifecycle/retry.js';
import { LocalLockService } from '../../../src/locks/local-lock-service.js';
import { LocalMembership } from '../../../src/membership/local-membership.js';
import { LocalRecordFile } from '../../../src/membership/local-store.js';
import { MembershipMetrics } from '../../../src/membership/metrics.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { LocalSession } from '../../../src/session/local-session.js';
import type { Session } from '../../../src/session/session.js';

/** A session a test ends by hand (its state machine is LocalSession's). */
class FakeSession extends LocalSession {
  lose(): Promise<void> {
    return this.close();
  }
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

interface Harness {
  readonly supervisor: IncarnationSupervisor;
  readonly clock: ManualClock;
  readonly opened: FakeSession[];
  readonly events: IncarnationEvent[];
  attempts(): number;
}

const open: IncarnationSupervisor[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

/** A supervisor whose first `failures` session opens fail with a retryable error. */
async function harness(failures = 0, openSession?: (signal: AbortSignal) => Promise<Session>): Promise<Harness> {
  const clock = new ManualClock(1_000_000);
  const dir = await mkdtemp(join(tmpdir(), 'hearth-incarnation-'));
  const membership = new LocalMembership(await LocalRecordFile.open(join(dir, 'membership.json')), clock);
  const opened: FakeSession[] = [];
  let attempts = 0;
  const supervisor = new IncarnationSupervisor({
    openSession:
      openSession ??
      (async () => {
        attempts++;
        if (attempts <= failures) throw new BackendUnavailableError('etcd', 'down');
        const s = new FakeSession('h@b');
        opened.push(s);
        return s;
      }),
    lockServiceFor: (session) => new LocalLockService({ incarnation: session.incarnation }),
    membership,
    join: { identity: { cluster: 'c@b', host: 'h@b', zone: 'nova' }, binary: VOLUME_BINARY, version: 'test' },
    clock,
    logger: silentLogger(),
    metrics: new MembershipMetrics(new Registry()),
    reportIntervalMs: 60_000,
    previousIncarnationWaitMs: 5_000,
    retry: new Backoff({ initialDelayMs: 100, maxDelayMs: 300, jitter: 'none' }),
  });
  open.push(supervisor);
  const events: IncarnationEvent[] = [];
  supervisor.subscribe((e) => events.push(e));
  return { supervisor, clock, opened, events, attempts: () => attempts };
}

describe('IncarnationSupervisor', () => {
  it('retries a failing session open with the backoff, on the clock', async () => {
    const h = await harness(3);
    const started = h.supervisor.start();
    await flush();
    expect(h.attempts()).toBe(1);
    await h.clock.advance(99);
    await flush();
    expect(h.attempts()).toBe(1);
    await h.clock.advance(1);
    await flush();
    expect(h.attempts()).toBe(2);
    await h.clock.advance(200);
    await flush();
    expect(h.attempts()).toBe(3);
    await h.clock.advance(299);
    await flush();
    expect(h.attempts()).toBe(3); // capped at 300, not 400
    await h.clock.advance(1);
    const inc = await started;
    expect(h.attempts()).toBe(4);
    expect(inc.session).toBe(h.opened[0]);
    expect(h.events.map((e) => `${e.type}:${e.reason}`)).toEqual(['started:start']);
  });

  it('start(signal) gives up at once when the signal aborts, with the open in flight told too', async () => {
    let openSignal: AbortSignal | undefined;
    const h = await harness(0, (signal) => {
      openSignal = signal;
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
    });
    const controller = new AbortController();
    const started = h.supervisor.start(controller.signal);
    await flush();
    controller.abort();
    await expect(started).rejects.toMatchObject({ code: 'ABORTED' });
    expect(openSignal?.aborted).toBe(true);
    expect(h.supervisor.joined).toBe(false);
  });

  it('after a lost session, the next incarnation starts on a new session; retire() stops a failing rejoin', async () => {
    const h = await harness();
    const first = await h.supervisor.start();
    await h.opened[0]!.lose();
    await waitFor(() => h.events.length >= 3, { what: 'the next incarnation' });
    const second = h.supervisor.current();
    expect(second?.session).toBe(h.opened[1]);
    expect(second?.member.owner.incarnation).not.toBe(first.member.owner.incarnation);
    expect(h.events.map((e) => `${e.type}:${e.reason}`)).toEqual(['started:start', 'ended:session-lost', 'started:session-lost']);
    h.supervisor.retire();
    await h.opened[1]!.lose();
    await waitFor(() => h.events.length >= 4, { what: 'the incarnation to end' });
    await h.clock.advance(10_000);
    // close() waits for the supervisor's loop, so a rejoin it had started would show below.
    await h.supervisor.close();
    expect(h.opened).toHaveLength(2);
    expect(h.supervisor.current()).toBeUndefined();
    expect(h.events.map((e) => `${e.type}:${e.reason}`)).toEqual(['started:start', 'ended:session-lost', 'started:session-lost', 'ended:session-lost']);
  });
});
