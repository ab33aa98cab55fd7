// GET /hearth/v1/dead-letters over the in-process job bus: what an operator sees when
// HearthMessagesDeadLettered fires, and Cinder's fault for a bad limit.
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadLetterRoutes } from '../../../src/api/dead-letters.js';
import { ApiServer } from '../../../src/api/server.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { dispositions } from '../../../src/routing/job-bus.js';
import { LocalBroker } from '../../../src/routing/local-broker.js';
import { LocalJobBus } from '../../../src/routing/local-job-bus.js';
import { waitFor } from '../../support/wait.js';

const CLUSTER = 'c1@be';

describe('GET /hearth/v1/dead-letters', () => {
  let bus: LocalJobBus;
  let server: ApiServer;
  beforeAll(async () => {
    bus = new LocalJobBus({ prefix: 'hearth', prefetch: 8, maxDeliveries: 5 }, { broker: new LocalBroker(), identity: { cluster: CLUSTER, host: 'h1@be' }, logger: silentLogger(), registry: new Registry() });
    await bus.start();
    server = new ApiServer({ logger: silentLogger(), maxBodyBytes: 65_536 });
    server.register(deadLetterRoutes(bus));
  });
  afterAll(async () => {
    await server.close();
    await bus.close();
  });

  it('shows nothing while nothing was dead-lettered', async () => {
    const res = await server.app.inject({ method: 'GET', url: '/hearth/v1/dead-letters' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ dead_letters: [] });
  });

  it('shows a rejected job with its reason, queue, member, deliveries and body, and removes nothing', async () => {
    const sub = await bus.consume(async () => dispositions.deadLetter('volume type unknown to this backend'));
    const sent = await bus.publish({ kind: 'create_volume', type: 'volume', id: '3f2a1b4c-0000-4000-8000-000000000001', opId: '3f2a1b4c-0000-4000-8000-0000000000a1', cluster: CLUSTER, attempt: 1 });
    await waitFor(async () => (await bus.listDeadLetters()).length === 1, { what: 'the dead letter' });
    await sub.cancel();
    for (let i = 0; i < 2; i++) {
      const res = await server.app.inject({ method: 'GET', url: '/hearth/v1/dead-letters?limit=10' });
      expect(res.statusCode).toBe(200);
      const [letter] = res.json<{ dead_letters: Record<string, unknown>[] }>().dead_letters;
      expect(letter).toMatchObject({ reason: 'rejected', detail: 'volume type unknown to this backend', by: 'h1@be', deliveries: 1 });
      expect(letter?.at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
      expect(JSON.parse(String(letter?.body))).toMatchObject({ opId: sent.opId });
    }
  });

  it.each(['0', '1001', 'x', '1.5'])('refuses limit=%s with a 400 fault', async (limit) => {
    const res = await server.app.inject({ method: 'GET', url: `/hearth/v1/dead-letters?limit=${limit}` });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ badRequest: { code: 400 } });
  });

  it('refuses an unknown filter with a 400 fault', async () => {
    const res = await server.app.inject({ method: 'GET', url: '/hearth/v1/dead-letters?queue=x' });
    expect(res.statusCode).toBe(400);
  });
});
