import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BackendAccessError, InvalidInputError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { socketOptionsFor, withHeartbeat } from '../../../src/amqp/socket-options.js';
import { HANDLER_ERROR_RETRY_MS, MAX_RETRY_DELAY_MS, runHandler, vet } from '../../../src/routing/dispatch.js';
import type { JobDelivery } from '../../../src/routing/job-bus.js';
import { type CleanupMessage, correlationIdOf, decodeJob, encodeJob, type JobMessage, MAX_MESSAGE_BYTES } from '../../../src/routing/job-message.js';
import { clusterQueueName, hostQueueName, topologyFor } from '../../../src/routing/topology.js';

const job: JobMessage = { v: 1, type: 'volume', id: 'vol-1', opId: 'op-1', kind: 'extend_volume', cluster: 'ceph@rbd', attempt: 2, publishedAt: 1_700_000_000_000 };
const bytes = (value: unknown): Buffer => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

describe('job messages', () => {
  it('round-trips a job through encode and decode', () => {
    expect(decodeJob(encodeJob(job))).toEqual({ ok: true, job });
  });

  it('ignores fields it does not know (additions within a version)', () => {
    expect(decodeJob(bytes({ ...job, priority: 'high' }))).toEqual({ ok: true, job });
  });

  it('names why a message cannot be a job', () => {
    expect(decodeJob(bytes('{oops'))).toMatchObject({ ok: false, reason: 'malformed', detail: expect.stringMatching(/not JSON/) as unknown });
    expect(decodeJob(bytes({ ...job, kind: 'format_disk' }))).toMatchObject({ ok: false, reason: 'malformed', detail: expect.stringMatching(/kind/) as unknown });
    expect(decodeJob(bytes({ ...job, attempt: -1 }))).toMatchObject({ ok: false, reason: 'malformed' });
    expect(decodeJob(bytes({ ...job, id: '../x' }))).toMatchObject({ ok: false, reason: 'malformed' });
    expect(decodeJob(bytes([1, 2]))).toMatchObject({ ok: false, reason: 'malformed' });
    expect(decodeJob(bytes(null))).toMatchObject({ ok: false, reason: 'malformed' });
    expect(decodeJob(Buffer.alloc(MAX_MESSAGE_BYTES + 1, 32))).toMatchObject({ ok: false, reason: 'oversized' });
  });

  it('dead-letters a version far in the future, a missing version and one of the wrong type, saying which', () => {
    expect(decodeJob(bytes({ ...job, v: 99 }))).toMatchObject({ ok: false, reason: 'unsupported-version', detail: expect.stringMatching(/^version 99 is newer than this build reads \(/) as unknown });
    expect(decodeJob(bytes({ ...job, v: 0 }))).toMatchObject({ ok: false, reason: 'unsupported-version', detail: expect.stringMatching(/^version 0 is older than this build reads/) as unknown });
    const { v: _v, ...unversioned } = job;
    expect(decodeJob(bytes(unversioned))).toMatchObject({ ok: false, reason: 'malformed', detail: expect.stringMatching(/^no version field/) as unknown });
    expect(decodeJob(bytes({ ...job, v: '1' }))).toMatchObject({ ok: false, reason: 'malformed', detail: expect.stringMatching(/^the version field is a string, not an integer/) as unknown });
    expect(decodeJob(bytes({ ...job, v: 1.5 }))).toMatchObject({ ok: false, reason: 'malformed', detail: expect.stringMatching(/non-integer number/) as unknown });
    expect(decodeJob(bytes({ ...job, v: [1] }))).toMatchObject({ ok: false, reason: 'malformed', detail: expect.stringMatching(/an array/) as unknown });
  });

  it('round-trips a cleanup request (kind cleanup) and names what is wrong with a bad one', () => {
    const cleanup: CleanupMessage = { v: 1, kind: 'cleanup', cluster: 'ceph@rbd', host: 'n1@rbd', resourceType: 'snapshot', resourceId: 'snap-1', requestId: 'req-1', publishedAt: 1 };
    expect(decodeJob(encodeJob(cleanup))).toEqual({ ok: true, job: cleanup });
    const minimal = { v: 1, kind: 'cleanup', cluster: 'ceph@rbd', host: 'n1@rbd', requestId: 'req-1', publishedAt: 1 } as const;
    expect(decodeJob(bytes(minimal))).toEqual({ ok: true, job: minimal });
    expect(correlationIdOf(cleanup)).toBe('req-1');
    expect(correlationIdOf(job)).toBe('op-1');
    expect(decodeJob(bytes({ ...minimal, host: undefined }))).toMatchObject({ ok: false, reason: 'malformed', detail: expect.stringMatching(/host/) as unknown });
    expect(decodeJob(bytes({ ...minimal, resourceType: 'backup' }))).toMatchObject({ ok: false, reason: 'malformed', detail: expect.stringMatching(/resourceType/) as unknown });
    expect(decodeJob(bytes({ ...minimal, v: 3 }))).toMatchObject({ ok: false, reason: 'unsupported-version' });
    // A job is still a job: the cleanup schema applies only to kind cleanup.
    expect(decodeJob(bytes({ ...job, host: 'x' }))).toEqual({ ok: true, job });
    expect(() => encodeJob({ ...cleanup, cluster: '' })).toThrow(InvalidInputError);
  });

  it('refuses to encode an invalid job', () => {
    expect(() => encodeJob({ ...job, cluster: '' })).toThrow(InvalidInputError);
    expect(() => encodeJob({ ...job, type: 'backup' as never })).toThrow(/type/);
  });
});

describe('vetting a delivery', () => {
  const limits = { cluster: 'ceph@rbd', maxDeliveries: 3 };
  it('delivers up to the delivery limit and dead-letters the delivery after it', () => {
    expect(vet(encodeJob(job), 3, limits)).toEqual({ action: 'deliver', job });
    expect(vet(encodeJob(job), 4, limits)).toMatchObject({ action: 'dead-letter', reason: 'delivery-limit' });
  });

  it('dead-letters a job of another cluster, and malformed input before counting', () => {
    expect(vet(encodeJob({ ...job, cluster: 'lvm@lvm' }), 1, limits)).toMatchObject({ action: 'dead-letter', reason: 'misrouted' });
    expect(vet(bytes('x'), 99, limits)).toMatchObject({ action: 'dead-letter', reason: 'malformed' });
  });
});

describe('running a handler', () => {
  const delivery: JobDelivery = { job, via: 'cluster', deliveryCount: 1, redelivered: false, signal: new AbortController().signal };
  const logger = silentLogger();

  it('passes valid dispositions through', async () => {
    expect(await runHandler(async () => ({ type: 'ack' }), delivery, logger)).toEqual({ type: 'ack' });
    expect(await runHandler(async () => ({ type: 'drop', reason: 'dup' }), delivery, logger)).toEqual({ type: 'drop', reason: 'dup' });
    expect(await runHandler(async () => ({ type: 'requeue' }), delivery, logger)).toEqual({ type: 'requeue' });
  });

  it('turns a throw or a nonsense answer into a retry later', async () => {
    const retry = { type: 'retry-later', delayMs: HANDLER_ERROR_RETRY_MS };
    expect(await runHandler(() => Promise.reject(new Error('boom')), delivery, logger)).toEqual(retry);
    expect(await runHandler(async () => undefined as never, delivery, logger)).toEqual(retry);
    expect(await runHandler(async () => ({ type: 'explode' }) as never, delivery, logger)).toEqual(retry);
  });

  it('keeps dead-letter reasons bounded and retry delays within [0, 60 s]', async () => {
    expect(await runHandler(async () => ({ type: 'dead-letter', reason: 'free text' as never, detail: 'd' }), delivery, logger)).toEqual({
      type: 'dead-letter',
      reason: 'rejected',
      detail: 'd',
    });
    expect(await runHandler(async () => ({ type: 'retry-later', delayMs: 1e9 }), delivery, logger)).toEqual({ type: 'retry-later', delayMs: MAX_RETRY_DELAY_MS });
    expect(await runHandler(async () => ({ type: 'retry-later', delayMs: -5 }), delivery, logger)).toEqual({ type: 'retry-later', delayMs: 0 });
  });
});

describe('names and URLs', () => {
  it('derives every name from the prefix, cluster and host', () => {
    expect(topologyFor('hearth', 'ceph@rbd', 'node1@rbd')).toEqual({
      exchange: 'hearth',
      clusterQueue: 'hearth.volume.ceph@rbd',
      hostQueue: 'hearth.volume.ceph@rbd.node1@rbd',
      noticeExchange: 'hearth.notices.ceph@rbd',
      deadExchange: 'hearth.dead',
      deadQueue: 'hearth.dead',
    });
    expect(clusterQueueName('p', 'c@b')).toBe('p.volume.c@b');
    expect(hostQueueName('p', 'c@b', 'h@b')).toBe('p.volume.c@b.h@b');
  });

  it('adds the heartbeat to the URL unless it sets one, keeping credentials and vhost', () => {
    expect(withHeartbeat('amqp://u:p%40ss@rabbit:5672/%2Fprod', 10)).toBe('amqp://u:p%40ss@rabbit:5672/%2Fprod?heartbeat=10');
    expect(withHeartbeat('amqps://rabbit/vh?heartbeat=3&frameMax=8192', 10)).toBe('amqps://rabbit/vh?heartbeat=3&frameMax=8192');
  });
});

describe('TLS socket options', () => {
  const base = { heartbeatSeconds: 10, connectTimeoutMs: 1234, reconnectMaxDelayMs: 1000, caFile: '', certFile: '', keyFile: '' };

  it('names the connection and bounds the connect; no TLS material without files', async () => {
    const options = await socketOptionsFor({ ...base, url: 'amqp://h/v' }, 'hearth n1@be');
    expect(options).toEqual({ timeout: 1234, clientProperties: { connection_name: 'hearth n1@be' } });
  });

  it('reads the CA and client certificate, and uses EXTERNAL only when the URL has no password', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-tls-'));
    try {
      await Promise.all([writeFile(join(dir, 'ca.pem'), 'CA'), writeFile(join(dir, 'c.pem'), 'CERT'), writeFile(join(dir, 'k.pem'), 'KEY')]);
      const files = { caFile: join(dir, 'ca.pem'), certFile: join(dir, 'c.pem'), keyFile: join(dir, 'k.pem') };
      const external = await socketOptionsFor({ ...base, ...files, url: 'amqps://rabbit:5671/v' }, 'n');
      expect((external.ca as Buffer[])[0]?.toString()).toBe('CA');
      expect((external.cert as Buffer).toString()).toBe('CERT');
      expect((external.key as Buffer).toString()).toBe('KEY');
      expect((external.credentials as { mechanism: string }).mechanism).toBe('EXTERNAL');
      const plain = await socketOptionsFor({ ...base, ...files, url: 'amqps://u:secret@rabbit:5671/v' }, 'n');
      expect(plain.credentials).toMatchObject({ mechanism: 'PLAIN', username: 'u', password: 'secret' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('takes the password from amqp.passwordFile (re-read per attempt) for the URL\'s user, also beside a client certificate', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-pw-'));
    try {
      const passwordFile = join(dir, 'password');
      await writeFile(passwordFile, 'first\n');
      const settings = { ...base, url: 'amqps://h%C3%A9arth@rabbit:5671/v', passwordFile };
      expect((await socketOptionsFor(settings, 'n')).credentials).toMatchObject({ mechanism: 'PLAIN', username: 'héarth', password: 'first' });
      await writeFile(passwordFile, 'rotated');
      expect((await socketOptionsFor(settings, 'n')).credentials).toMatchObject({ password: 'rotated' });
      await Promise.all([writeFile(join(dir, 'c.pem'), 'CERT'), writeFile(join(dir, 'k.pem'), 'KEY')]);
      const withCert = await socketOptionsFor({ ...settings, certFile: join(dir, 'c.pem'), keyFile: join(dir, 'k.pem') }, 'n');
      expect(withCert.credentials).toMatchObject({ mechanism: 'PLAIN', password: 'rotated' });
      await rm(passwordFile);
      const err = await socketOptionsFor(settings, 'n').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BackendAccessError);
      expect(err).toMatchObject({ code: 'BACKEND_ACCESS_DENIED', reason: 'credentials', message: `amqp.passwordFile ${passwordFile} cannot be read (no such file, ENOENT)` });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('decodes a percent-encoded UTF-8 password in the URL as UTF-8 (amqplib alone would read it as Latin-1)', async () => {
    const options = await socketOptionsFor({ ...base, url: 'amqp://u:p%C3%A4ss%40word@h/v' }, 'n');
    expect(options.credentials).toMatchObject({ username: 'u', password: 'päss@word' });
    expect((await socketOptionsFor({ ...base, url: 'amqp://h/v' }, 'n')).credentials).toBeUndefined();
  });
});
