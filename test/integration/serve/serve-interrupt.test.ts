import { afterAll, describe, expect, it } from 'vitest';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { freePort } from '../../support/ports.js';
import { waitFor } from '../../support/wait.js';

/** What "promptly" means here: far below the default lease TTL (10 s) that the start would wait out. */
const PROMPT_EXIT_MS = 5_000;

/**
 * `hearth serve` pointed at an etcd that is not there keeps retrying its start (the session
 * lease, the membership listing). One SIGTERM or SIGINT must stop it: it shuts down what
 * started and exits 0, without a second signal. Real processes; etcd and RabbitMQ are loopback
 * ports nobody listens on.
 */
describe('hearth serve: a signal interrupts a start that waits for an unreachable etcd', () => {
  const procs: HearthProcess[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
  });

  const startStuck = async (name: string): Promise<HearthProcess> => {
    const [etcdPort, amqpPort] = [await freePort(), await freePort()];
    const p = await startHearth({
      name,
      env: { HEARTH_ETCD_ENDPOINTS: `http://127.0.0.1:${etcdPort}`, HEARTH_AMQP_URL: `amqp://127.0.0.1:${amqpPort}`, HEARTH_ETCD_CALL_TIMEOUT_MS: '1000' },
      // The ops listener is up before membership; readiness never comes.
      waitFor: 'live',
    });
    procs.push(p);
    await waitFor(() => p.logs().some((l) => typeof l.err === 'object' && String((l.err as { message?: unknown }).message).includes('etcd is unreachable')), {
      timeoutMs: 15_000,
      what: 'the start to be retrying etcd',
    });
    expect(p.logs().some((l) => l.msg === 'hearth started')).toBe(false);
    return p;
  };

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`one ${signal}: exits 0 promptly, having logged the interrupted start and the shutdown`, async () => {
      const p = await startStuck(`stuck-${signal.toLowerCase()}`);
      const at = Date.now();
      p.process.signal(signal);
      const exit = await p.process.waitForExit();
      const ms = Date.now() - at;
      console.log(`[serve] ${signal} during a start retrying an unreachable etcd: exit ${exit.code} after ${ms} ms`);
      expect(exit).toEqual({ code: 0, signal: null });
      expect(ms).toBeLessThan(PROMPT_EXIT_MS);
      // The output reaches the log file through a pipe, possibly after the exit event.
      await waitFor(() => p.logs().some((l) => l.msg === 'hearth stopped'), { timeoutMs: 5_000, what: 'the last log lines' });
      const messages = p.logs().map((l) => l.msg);
      const interrupted = p.logs().find((l) => l.msg === 'start-up interrupted by a signal; shutting down');
      expect(interrupted).toMatchObject({ signal });
      expect(messages).not.toContain('second signal: exiting now');
      expect(messages.indexOf('hearth stopped')).toBeGreaterThan(messages.indexOf('start-up interrupted by a signal; shutting down'));
    });
  }
});
