// Callers waiting for a RabbitMQ session while the broker is away: many at once are normal (every
// publish in flight waits), and must not make Node warn of a listener leak on stderr.
import { describe, expect, it } from 'vitest';
import { AmqpConnection } from '../../../src/amqp/connection.js';
import { AbortedError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/observability/logger.js';

describe('AmqpConnection.waitForSession', () => {
  it('lets 50 callers wait at once without a MaxListenersExceededWarning, each ending on its own signal', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    const connection = new AmqpConnection(
      { url: 'amqp://127.0.0.1:1', heartbeatSeconds: 1, connectTimeoutMs: 100, reconnectMaxDelayMs: 100, caFile: '', certFile: '', keyFile: '' },
      { logger: silentLogger(), metrics: { amqpConnectionUp: { set: () => undefined }, amqpReconnects: { inc: () => undefined }, amqpNodeConnected: { set: () => undefined }, amqpConnectionAttempts: { inc: () => undefined } }, name: 'test', setup: async () => undefined },
    );
    try {
      // Never started: no session comes, every wait ends on its deadline.
      const waits = Array.from({ length: 50 }, () => connection.waitForSession(AbortSignal.timeout(50)).then(() => 'session', (err: unknown) => err));
      const ends = await Promise.all(waits);
      expect(ends.every((e) => e instanceof AbortedError)).toBe(true);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      await connection.close();
    }
  });
});
