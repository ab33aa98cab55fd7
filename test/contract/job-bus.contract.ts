import { waitFor } from '../support/wait.js';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AbortedError, ClosedError, InvalidInputError, NotFoundError } from '../../src/errors.js';
import { asCleanupDelivery, asJobDelivery, type BusMessage, type Disposition, dispositions, type JobBus, type JobDelivery, type JobInput } from '../../src/routing/job-bus.js';
import { MAX_MESSAGE_BYTES, type Notice } from '../../src/routing/job-message.js';

/** Options for one member's bus. */
export interface MemberOptions {
  readonly maxDeliveries?: number;
  readonly prefetch?: number;
  readonly registry?: Registry;
}

/** One backend (a broker, or the in-process broker) that several members share. */
export interface JobBusBackend {
  /** The cluster id every member joins. */
  readonly cluster: string;
  /** A started, ready bus for member `host` of {@link cluster}. */
  member(host: string, options?: MemberOptions): Promise<JobBus>;
  /** Puts raw bytes on the cluster queue as a publisher outside hearth could. */
  injectRaw(content: Buffer): Promise<void>;
  /** Closes every member and frees the backend. */
  close(): Promise<void>;
}

let seq = 0;
function job(cluster: string, overrides: Partial<JobInput> = {}): JobInput {
  seq++;
  return { type: 'volume', id: `vol-${seq}`, opId: `op-${seq}`, kind: 'create_volume', cluster, attempt: 1, ...overrides };
}

/** Waits until `probe` is true (bounded), with the harness's one wait helper. */
async function until(probe: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(probe, { timeoutMs, intervalMs: 10, what });
}

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A handler that records deliveries and answers with `answer(delivery)`. */
function recorder(answer: (d: JobDelivery, n: number) => Disposition | Promise<Disposition> = () => dispositions.ack()) {
  const seen: JobDelivery[] = [];
  const handler = async (delivery: JobDelivery<BusMessage>): Promise<Disposition> => {
    const d = asJobDelivery(delivery);
    if (!d) throw new Error(`expected a job, got ${JSON.stringify(delivery.job)}`);
    seen.push(d);
    return answer(d, seen.length);
  };
  return { seen, handler };
}

async function deadLettered(registry: Registry, reason: string): Promise<number> {
  const metric = registry.getSingleMetric('hearth_messages_dead_lettered_total');
  const values = (await metric?.get())?.values ?? [];
  return values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

/**
 * The JobBus contract. Every adapter must pass it: the in-process bus in the unit project, the
 * RabbitMQ bus in the integration project.
 */
export function describeJobBusContract(adapter: string, makeBackend: () => Promise<JobBusBackend>): void {
  describe(`JobBus contract: ${adapter}`, () => {
    let backend: JobBusBackend;
    beforeEach(async () => {
      backend = await makeBackend();
    });
    afterEach(async () => {
      await backend.close();
    });

    it('is up after start, publishes a job once confirmed and delivers it once', async () => {
      const bus = await backend.member('a@be');
      expect(bus.state).toBe('up');
      expect(bus.ready).toBe(true);
      const { seen, handler } = recorder();
      await bus.consume(handler);
      const sent = await bus.publish(job(backend.cluster));
      expect(sent.v).toBe(1);
      expect(sent.publishedAt).toBeGreaterThan(0);
      await until(() => seen.length === 1, 'the delivery');
      expect(seen[0]?.job).toEqual(sent);
      expect(seen[0]).toMatchObject({ via: 'cluster', deliveryCount: 1, redelivered: false });
      await settle(200);
      expect(seen).toHaveLength(1);
    });

    it('carries cleanup requests (kind cleanup) on the cluster queue beside jobs, each delivered once', async () => {
      const bus = await backend.member('a@be');
      const seen: JobDelivery<BusMessage>[] = [];
      await bus.consume(async (d) => {
        seen.push(d);
        return dispositions.ack();
      });
      const request = await bus.publish({ kind: 'cleanup', cluster: backend.cluster, host: 'dead@be', resourceType: 'volume', resourceId: 'vol-1', requestId: 'req-1' });
      expect(request).toMatchObject({ v: 1, kind: 'cleanup', host: 'dead@be', publishedAt: expect.any(Number) as number });
      const sent = await bus.publish(job(backend.cluster));
      await until(() => seen.length === 2, 'two deliveries');
      const cleanup = seen.map(asCleanupDelivery).find((d) => d !== undefined);
      expect(cleanup?.job).toEqual(request);
      expect(cleanup).toMatchObject({ via: 'cluster', deliveryCount: 1 });
      expect(seen.map(asJobDelivery).find((d) => d !== undefined)?.job).toEqual(sent);
      await expect(bus.publish({ kind: 'cleanup', cluster: backend.cluster, host: '', requestId: 'r' })).rejects.toThrow(/host/);
      await settle(200);
      expect(seen).toHaveLength(2);
    });

    it('shares the cluster queue between competing members: each acked job runs once', async () => {
      const a = await backend.member('a@be', { prefetch: 2 });
      const b = await backend.member('b@be', { prefetch: 2 });
      const slowAck = async (): Promise<Disposition> => {
        await settle(15);
        return dispositions.ack();
      };
      const ra = recorder(slowAck);
      const rb = recorder(slowAck);
      await a.consume(ra.handler);
      await b.consume(rb.handler);
      const sent = [];
      for (let i = 0; i < 30; i++) sent.push(await a.publish(job(backend.cluster)));
      await until(() => ra.seen.length + rb.seen.length === 30, '30 deliveries');
      await settle(200);
      const ids = [...ra.seen, ...rb.seen].map((d) => d.job.opId).sort();
      expect(ids).toEqual(sent.map((j) => j.opId).sort());
      expect(ra.seen.length).toBeGreaterThan(0);
      expect(rb.seen.length).toBeGreaterThan(0);
    });

    it('drains a backlog published before anyone consumed, settling every delivery', async () => {
      const bus = await backend.member('a@be', { prefetch: 2 });
      const sent = [];
      for (let i = 0; i < 40; i++) sent.push(await bus.publish(job(backend.cluster)));
      const r = recorder();
      const sub = await bus.consume(r.handler);
      await until(() => r.seen.length === 40, '40 deliveries');
      await sub.idle();
      await settle(200);
      expect(r.seen.map((d) => d.job.opId).sort()).toEqual(sent.map((j) => j.opId).sort());
      expect(r.seen.every((d) => d.deliveryCount === 1)).toBe(true);
    });

    it('drop acknowledges a duplicate without redelivery', async () => {
      const bus = await backend.member('a@be');
      const r = recorder(() => dispositions.drop('owned by a live worker'));
      await bus.consume(r.handler);
      await bus.publish(job(backend.cluster));
      await until(() => r.seen.length === 1, 'the delivery');
      await settle(300);
      expect(r.seen).toHaveLength(1);
    });

    it('requeue hands a job back; it comes again with a higher delivery count', async () => {
      const bus = await backend.member('a@be');
      const r = recorder((_d, n) => (n === 1 ? dispositions.requeue() : dispositions.ack()));
      await bus.consume(r.handler);
      await bus.publish(job(backend.cluster));
      await until(() => r.seen.length === 2, 'the redelivery');
      expect(r.seen[1]).toMatchObject({ deliveryCount: 2, redelivered: true });
      expect(r.seen[1]?.job).toEqual(r.seen[0]?.job);
    });

    it('cancel stops new deliveries without losing the one in flight, which can still be acked', async () => {
      const a = await backend.member('a@be');
      let release: (d: Disposition) => void = () => undefined;
      const ra = recorder(() => new Promise<Disposition>((resolve) => (release = resolve)));
      const sub = await a.consume(ra.handler);
      const first = await a.publish(job(backend.cluster));
      await until(() => ra.seen.length === 1, 'the first delivery');
      await sub.cancel();
      expect(sub.active).toBe(false);
      expect(sub.inFlight).toBe(1);
      const second = await a.publish(job(backend.cluster));
      await settle(300);
      expect(ra.seen).toHaveLength(1);
      const b = await backend.member('b@be');
      const rb = recorder();
      await b.consume(rb.handler);
      await until(() => rb.seen.length === 1, 'the second job at b');
      expect(rb.seen[0]?.job.opId).toBe(second.opId);
      release(dispositions.ack());
      await sub.idle();
      expect(sub.inFlight).toBe(0);
      await settle(300);
      expect(rb.seen.map((d) => d.job.opId)).not.toContain(first.opId);
    });

    it('a job handed back during a drain goes to another member', async () => {
      const a = await backend.member('a@be');
      let handBack: () => void = () => undefined;
      const ra = recorder(() => new Promise<Disposition>((resolve) => (handBack = () => resolve(dispositions.requeue()))));
      const sub = await a.consume(ra.handler);
      const sent = await a.publish(job(backend.cluster));
      await until(() => ra.seen.length === 1, 'the delivery at a');
      await sub.cancel();
      const b = await backend.member('b@be');
      const rb = recorder();
      await b.consume(rb.handler);
      handBack();
      await sub.idle();
      await until(() => rb.seen.length === 1, 'the handed-back job at b');
      expect(rb.seen[0]).toMatchObject({ deliveryCount: 2, redelivered: true });
      expect(rb.seen[0]?.job.opId).toBe(sent.opId);
    });

    it('dead-letters on request, with reason and detail, counted, and not redelivered', async () => {
      const registry = new Registry();
      const bus = await backend.member('a@be', { registry });
      const r = recorder(() => dispositions.deadLetter('volume type unknown to this backend'));
      await bus.consume(r.handler);
      const sent = await bus.publish(job(backend.cluster));
      await until(() => r.seen.length === 1, 'the delivery');
      await expect.poll(() => bus.listDeadLetters(), { timeout: 5_000 }).toHaveLength(1);
      const [letter] = await bus.listDeadLetters();
      expect(letter).toMatchObject({ reason: 'rejected', detail: 'volume type unknown to this backend', by: 'a@be', deliveries: 1 });
      expect(JSON.parse(letter?.body ?? '{}')).toMatchObject({ opId: sent.opId });
      expect(await bus.listDeadLetters()).toHaveLength(1); // browsing removes nothing
      expect(await deadLettered(registry, 'rejected')).toBe(1);
      await settle(200);
      expect(r.seen).toHaveLength(1);
    });

    it('dead-letters malformed messages with a reason and keeps consuming', async () => {
      const registry = new Registry();
      const bus = await backend.member('a@be', { registry });
      const r = recorder();
      await bus.consume(r.handler);
      const valid = { ...job(backend.cluster), v: 1, publishedAt: Date.now() };
      await backend.injectRaw(Buffer.from('{not json'));
      await backend.injectRaw(Buffer.from(JSON.stringify({ v: 1, hello: 'world' })));
      await backend.injectRaw(Buffer.from(JSON.stringify({ ...valid, pad: 'x'.repeat(MAX_MESSAGE_BYTES) })));
      await backend.injectRaw(Buffer.from(JSON.stringify({ ...valid, v: 3 })));
      await backend.injectRaw(Buffer.from(JSON.stringify({ ...valid, cluster: 'elsewhere@be' })));
      const after = await bus.publish(job(backend.cluster));
      await until(() => r.seen.length === 1, 'the valid job');
      expect(r.seen[0]?.job.opId).toBe(after.opId);
      await expect.poll(async () => (await bus.listDeadLetters()).length, { timeout: 5_000 }).toBe(5);
      const reasons = (await bus.listDeadLetters()).map((l) => l.reason).sort();
      expect(reasons).toEqual(['malformed', 'malformed', 'misrouted', 'oversized', 'unsupported-version']);
      expect((await bus.listDeadLetters()).find((l) => l.reason === 'malformed')?.detail).toBeTruthy();
      expect(await deadLettered(registry, 'malformed')).toBe(2);
      expect(await deadLettered(registry, 'oversized')).toBe(1);
    });

    it('dead-letters a job that keeps coming back after maxDeliveries deliveries', async () => {
      const registry = new Registry();
      const bus = await backend.member('a@be', { maxDeliveries: 3, registry });
      const r = recorder(() => dispositions.requeue());
      await bus.consume(r.handler);
      await bus.publish(job(backend.cluster));
      await expect.poll(async () => (await bus.listDeadLetters()).length, { timeout: 10_000 }).toBe(1);
      expect(r.seen.map((d) => d.deliveryCount)).toEqual([1, 2, 3]);
      const [letter] = await bus.listDeadLetters();
      expect(letter).toMatchObject({ reason: 'delivery-limit', deliveries: 4 });
      expect(await deadLettered(registry, 'delivery-limit')).toBe(1);
    });

    it('survives a throwing handler: the job comes back later', async () => {
      const bus = await backend.member('a@be');
      const r = recorder((_d, n) => {
        if (n === 1) throw new Error('boom');
        return dispositions.ack();
      });
      await bus.consume(r.handler);
      await bus.publish(job(backend.cluster));
      await until(() => r.seen.length === 2, 'the retry');
      expect(r.seen[1]?.deliveryCount).toBe(2);
    });

    it('retry-later hands the job back only after the delay', async () => {
      const bus = await backend.member('a@be');
      const times: number[] = [];
      const r = recorder((_d, n) => {
        times.push(Date.now());
        return n === 1 ? dispositions.retryLater(400) : dispositions.ack();
      });
      await bus.consume(r.handler);
      await bus.publish(job(backend.cluster));
      await until(() => r.seen.length === 2, 'the retry');
      expect((times[1] ?? 0) - (times[0] ?? 0)).toBeGreaterThanOrEqual(350);
    });

    it('routes host-directed jobs to that host only, and refuses unknown hosts', async () => {
      const a = await backend.member('a@be');
      const b = await backend.member('b@be');
      const ra = recorder();
      const rb = recorder();
      await a.consume(ra.handler);
      await b.consume(rb.handler);
      for (let i = 0; i < 5; i++) await a.publish(job(backend.cluster), { host: 'b@be' });
      await until(() => rb.seen.length === 5, 'five jobs at b');
      await settle(200);
      expect(ra.seen).toHaveLength(0);
      expect(rb.seen.every((d) => d.via === 'host')).toBe(true);
      await expect(a.publish(job(backend.cluster), { host: 'nobody@be' })).rejects.toBeInstanceOf(NotFoundError);
    });

    it('fans notices out to every member of the cluster', async () => {
      const a = await backend.member('a@be');
      const b = await backend.member('b@be');
      const got: { at: string; notice: Notice }[] = [];
      await a.subscribeNotices((notice) => void got.push({ at: 'a', notice }));
      const subB = await b.subscribeNotices((notice) => void got.push({ at: 'b', notice }));
      await a.publishNotice({ type: 'failover-completed', data: { activeBackend: 'secondary' } });
      await until(() => got.length === 2, 'both notices');
      expect(got.map((g) => g.at).sort()).toEqual(['a', 'b']);
      expect(got[0]?.notice).toMatchObject({ type: 'failover-completed', from: 'a@be', cluster: backend.cluster, data: { activeBackend: 'secondary' } });
      await subB.cancel();
      await a.publishNotice({ type: 'second' });
      await until(() => got.length === 3, 'the second notice at a');
      await settle(200);
      expect(got.filter((g) => g.at === 'b')).toHaveLength(1);
    });

    it('refuses an invalid job before sending anything', async () => {
      const bus = await backend.member('a@be');
      const r = recorder();
      await bus.consume(r.handler);
      await expect(bus.publish({ ...job(backend.cluster), kind: 'format_disk' as never })).rejects.toBeInstanceOf(InvalidInputError);
      await expect(bus.publish({ ...job(backend.cluster), id: '../etc/passwd' })).rejects.toBeInstanceOf(InvalidInputError);
      await settle(300);
      expect(r.seen).toHaveLength(0);
      expect(await bus.listDeadLetters()).toHaveLength(0);
    });

    it('honours abort signals on publish and consume', async () => {
      const bus = await backend.member('a@be');
      await expect(bus.publish(job(backend.cluster), { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortedError);
      const stop = new AbortController();
      const r = recorder();
      const sub = await bus.consume(r.handler, { signal: stop.signal });
      stop.abort();
      await until(() => !sub.active, 'the subscription to end');
      await bus.publish(job(backend.cluster));
      await settle(300);
      expect(r.seen).toHaveLength(0);
    });

    it('on close hands unsettled deliveries back, then refuses calls; close is idempotent', async () => {
      const a = await backend.member('a@be');
      const states: string[] = [];
      a.onStateChange((c) => states.push(c.state));
      const ra = recorder(() => new Promise<Disposition>(() => undefined));
      await a.consume(ra.handler);
      const sent = await a.publish(job(backend.cluster));
      await until(() => ra.seen.length === 1, 'the delivery at a');
      await a.close();
      await a.close();
      expect(ra.seen[0]?.signal.aborted).toBe(true);
      expect(a.state).toBe('closed');
      expect(states).toContain('closed');
      await expect(a.publish(job(backend.cluster))).rejects.toBeInstanceOf(ClosedError);
      const b = await backend.member('b@be');
      const rb = recorder();
      await b.consume(rb.handler);
      await until(() => rb.seen.length === 1, 'the job at b');
      expect(rb.seen[0]).toMatchObject({ deliveryCount: 2, redelivered: true });
      expect(rb.seen[0]?.job.opId).toBe(sent.opId);
    });
  });
}
