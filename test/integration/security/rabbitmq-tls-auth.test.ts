import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { type AccessDeniedReason, BackendAccessError } from '../../../src/errors.js';
import { createLogger } from '../../../src/observability/logger.js';
import { Health } from '../../../src/ops/health.js';
import { AmqpJobBus } from '../../../src/routing/amqp-job-bus.js';
import { jobBusReadiness } from '../../../src/routing/job-bus.js';
import { correlationIdOf } from '../../../src/routing/job-message.js';
import { type BusMessage, dispositions, type JobBus, type JobDelivery } from '../../../src/routing/job-bus.js';
import type { Notice } from '../../../src/routing/job-message.js';
import { type EtcdTestContext, useEtcd } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { waitFor } from '../../support/wait.js';
import { requireTool } from '../deploy/tools.js';
import { makePki, type TestPki } from './certs.js';
import { HEARTH_PERMISSION, startTlsRabbit, type TlsRabbit } from './rabbit-tls.js';

// hearth's AmqpJobBus, built as the composition root builds it from a Config that hearth's own loader read,
// against RabbitMQ set up as docs/security.md says: a TLS listener, a vhost and a user of
// hearth's own with permissions on hearth's prefix only, and no guest. One broker verifies
// server certificates only (user and password); the other requires client certificates and
// logs hearth in with EXTERNAL.

const openssl = requireTool('openssl', 'openssl');

const CLUSTER = 'sec@be';
const HOST = 'n1@be';

/** Distinct, greppable secrets: none may show in an error, a readiness detail or a log line. */
const secret = (name: string): string => `${name}-${randomBytes(10).toString('hex')}`;

/** A job bus as hearth's composition root builds it, with a log and /readyz of its own. */
interface BusUnderTest {
  readonly bus: JobBus;
  readonly health: Health;
  /** Everything it logged (JSON lines). */
  log(): string;
  close(): Promise<void>;
}

async function busFrom(env: Record<string, string>): Promise<BusUnderTest> {
  const config = await loadConfig({
    env: {
      // Cluster mode needs etcd too; nothing here connects to it.
      HEARTH_ETCD_ENDPOINTS: 'http://127.0.0.1:1',
      HEARTH_AMQP_CONNECT_TIMEOUT_MS: '3000',
      HEARTH_AMQP_RECONNECT_MAX_DELAY_MS: '500',
      HEARTH_AMQP_HEARTBEAT_SECONDS: '5',
      ...env,
    },
  });
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } });
  const bus = new AmqpJobBus(config.amqp, { identity: { cluster: CLUSTER, host: HOST }, logger, registry: new Registry() });
  const health = new Health();
  health.addReadiness('job-bus', jobBusReadiness(bus));
  await bus.start();
  return { bus, health, log: () => lines.join(''), close: () => bus.close() };
}

/** Publishes a job and a notice and sees both arrive; uses every kind of name hearth declares. */
async function roundTrip(bus: JobBus): Promise<void> {
  const jobs: JobDelivery<BusMessage>[] = [];
  const notices: Notice[] = [];
  const subscription = await bus.consume(async (d) => {
    jobs.push(d);
    return dispositions.ack();
  });
  const notice = await bus.subscribeNotices((n) => void notices.push(n));
  const opId = `op-${randomBytes(4).toString('hex')}`;
  await bus.publish({ type: 'volume', id: 'vol-1', opId, kind: 'create_volume', cluster: CLUSTER, attempt: 0 });
  await bus.publish({ type: 'volume', id: 'vol-1', opId: `${opId}-h`, kind: 'delete_volume', cluster: CLUSTER, attempt: 0 }, { host: HOST });
  await bus.publishNotice({ type: 'hello' });
  await waitFor(() => jobs.length >= 2 && notices.length >= 1, { timeoutMs: 10_000, what: 'the jobs and the notice' });
  expect(jobs.map((j) => `${j.via}:${correlationIdOf(j.job)}`).sort()).toEqual([`cluster:${opId}`, `host:${opId}-h`]);
  expect(notices[0]).toMatchObject({ type: 'hello', from: HOST });
  expect(await bus.listDeadLetters()).toEqual([]);
  await subscription.cancel();
  await notice.cancel();
}

/** Waits for the first connection attempt to fail, then for the error a waiting caller gets. */
async function firstRefusal(t: BusUnderTest): Promise<unknown> {
  await waitFor(() => t.log().includes('"attempt":1,'), { timeoutMs: 15_000, what: 'the first connection attempt to fail' });
  return t.bus.waitUntilReady({ timeoutMs: 200 }).then(
    () => undefined,
    (e: unknown) => e,
  );
}

/**
 * The bus stays unready with a BackendAccessError of `reason` whose text matches `pattern`,
 * keeps retrying (no crash, no give-up), and nothing it says holds one of `secrets`.
 */
async function expectRefused(env: Record<string, string>, reason: AccessDeniedReason, pattern: RegExp, secrets: readonly string[]): Promise<void> {
  const t = await busFrom(env);
  try {
    const err = await firstRefusal(t);
    expect(err, t.log()).toBeInstanceOf(BackendAccessError);
    expect(err).toMatchObject({ code: 'BACKEND_ACCESS_DENIED', backend: 'amqp', reason });
    expect((err as Error).message).toMatch(pattern);
    const report = t.health.ready();
    expect(report.ok).toBe(false);
    expect(report.checks['job-bus']?.detail).toMatch(pattern);
    // Still trying: an operator can fix the broker or the Secret without restarting hearth.
    await waitFor(() => /"attempt":[2-9]/.test(t.log()), { timeoutMs: 5_000, what: 'a second attempt' });
    expect(t.bus.state).not.toBe('up');
    expect(t.health.ready().ok).toBe(false);
    const said = [t.log(), (err as Error).message, String((err as Error).stack), JSON.stringify(report)].join('\n');
    for (const s of secrets) expect(said.includes(s), `${s.slice(0, 6)}… was said`).toBe(false);
    expect(t.log()).toMatch(/"level":"error".*cannot connect to RabbitMQ/);
  } finally {
    await t.close();
  }
}

describe.skipIf(!openssl)('RabbitMQ with TLS and a user and password of its own', () => {
  const password = secret('amqp-pw');
  const narrowPassword = secret('narrow-pw');
  const wrongPassword = secret('wrong-pw');
  let dir: string;
  let pki: TestPki;
  let otherPki: TestPki;
  let rabbit: TlsRabbit;
  let passwordFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-amqp-tls-'));
    pki = await makePki(dir, []);
    otherPki = await makePki(dir, [], 'other-ca');
    rabbit = await startTlsRabbit(pki, { mtls: false });
    await rabbit.addUser('hearth', password, HEARTH_PERMISSION);
    await rabbit.addUser('narrow', narrowPassword, '^other(\\..*)?$');
    await rabbit.addUser('outsider', narrowPassword, undefined);
    passwordFile = join(dir, 'amqp-password');
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  });
  afterAll(async () => {
    await rabbit?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('connects over amqps:// with the password in the URL, declares hearth\'s names only, and routes jobs and notices', async () => {
    const t = await busFrom({ HEARTH_AMQP_URL: rabbit.url(`hearth:${password}@`), HEARTH_AMQP_CA_FILE: pki.ca.cert });
    try {
      await t.bus.waitUntilReady({ timeoutMs: 15_000 });
      expect(t.health.ready().ok).toBe(true);
      await roundTrip(t.bus);
      const mine = (await rabbit.connections()).filter((c) => c.user === 'hearth');
      expect(mine).toHaveLength(1);
      expect(mine[0]).toMatchObject({ vhost: rabbit.vhost, ssl: true, auth_mechanism: 'PLAIN' });
      expect(String(mine[0]?.ssl_protocol)).toMatch(/tlsv1\.[23]/);
      const queues = await rabbit.queues();
      expect(queues).toEqual(expect.arrayContaining(['hearth.dead', `hearth.volume.${CLUSTER}`, `hearth.volume.${CLUSTER}.${HOST}`]));
      for (const q of queues) expect(q).toMatch(new RegExp(HEARTH_PERMISSION));
      expect(t.log()).not.toContain(password);
    } finally {
      await t.close();
    }
  });

  it('takes the password from amqp.passwordFile, reading it again on each attempt (a rotated Secret needs no restart)', async () => {
    const rotating = join(dir, 'rotating-password');
    await writeFile(rotating, `${wrongPassword}\n`);
    const t = await busFrom({ HEARTH_AMQP_URL: rabbit.url('hearth@'), HEARTH_AMQP_PASSWORD_FILE: rotating, HEARTH_AMQP_CA_FILE: pki.ca.cert });
    try {
      const err = await firstRefusal(t);
      expect(err).toMatchObject({ reason: 'credentials' });
      expect((err as Error).message).toContain(`amqp.passwordFile ${rotating}`);
      await writeFile(rotating, `${password}\n`);
      await t.bus.waitUntilReady({ timeoutMs: 10_000 });
      await roundTrip(t.bus);
      for (const s of [password, wrongPassword]) expect(t.log()).not.toContain(s);
    } finally {
      await t.close();
    }
  });

  it('refuses a wrong password', async () => {
    await expectRefused(
      { HEARTH_AMQP_URL: rabbit.url(`hearth:${wrongPassword}@`), HEARTH_AMQP_CA_FILE: pki.ca.cert },
      'credentials',
      /refused the login of user "hearth" \(PLAIN\)/,
      [wrongPassword, password],
    );
  });

  it('has no guest any more, not even from loopback', async () => {
    await expectRefused({ HEARTH_AMQP_URL: rabbit.url('guest:guest@'), HEARTH_AMQP_CA_FILE: pki.ca.cert }, 'credentials', /user "guest"/, []);
  });

  it('does not talk to a broker whose certificate amqp.caFile did not sign', async () => {
    await expectRefused(
      { HEARTH_AMQP_URL: rabbit.url('hearth@'), HEARTH_AMQP_PASSWORD_FILE: passwordFile, HEARTH_AMQP_CA_FILE: otherPki.ca.cert },
      'tls',
      /server certificate is not trusted \(SELF_SIGNED_CERT_IN_CHAIN\): amqp.caFile/,
      [password],
    );
  });

  it('refuses a user without permissions on hearth\'s prefix, naming the regex to grant', async () => {
    await expectRefused(
      { HEARTH_AMQP_URL: rabbit.url(`narrow:${narrowPassword}@`), HEARTH_AMQP_CA_FILE: pki.ca.cert },
      'permission',
      /user "narrow" may not use exchange 'hearth' in vhost 'hearth-secure': grant it configure, write and read on \^hearth\(\\\.\.\*\)\?\$/,
      [narrowPassword],
    );
  });

  describe('a real `hearth serve` in cluster mode', () => {
    let etcd: EtcdTestContext;
    const procs: HearthProcess[] = [];
    const serveEnv = (host: string, passwordFileOf: string): Record<string, string> => ({
      HEARTH_ETCD_ENDPOINTS: etcd.endpoints.join(','),
      HEARTH_ETCD_PREFIX: etcd.prefix,
      HEARTH_AMQP_URL: rabbit.url('hearth@'),
      HEARTH_AMQP_PASSWORD_FILE: passwordFileOf,
      HEARTH_AMQP_CA_FILE: pki.ca.cert,
      HEARTH_CLUSTER: 'serve',
      HEARTH_BACKEND: 'be',
      HEARTH_HOST: host,
      HEARTH_LEASE_TTL_MS: '3000',
      HEARTH_LEASE_MARGIN_MS: '1000',
      HEARTH_LOG_LEVEL: 'trace',
    });
    beforeAll(() => {
      etcd = useEtcd();
    });
    afterAll(async () => {
      await Promise.all(procs.map((p) => p.stop()));
      await etcd?.close();
    });

    it('becomes ready over amqps:// with its password in a file, and never logs it', async () => {
      const worker = await startHearth({ name: 'tls-worker', env: serveEnv('w1', passwordFile) });
      procs.push(worker);
      expect((await fetch(`${worker.opsUrl}/readyz`)).status).toBe(200);
      const conn = (await rabbit.connections()).find((c) => c.user === 'hearth');
      expect(conn).toMatchObject({ vhost: rabbit.vhost, ssl: true, auth_mechanism: 'PLAIN' });
      expect(await rabbit.queues()).toContain('hearth.volume.serve@be');
      const config = worker.logs().find((l) => l.msg === 'starting hearth')?.config as { amqp: { url: string; passwordFile: string } };
      expect(config.amqp).toMatchObject({ url: rabbit.url('hearth@'), passwordFile });
      expect(worker.output()).not.toContain(password);
    });

    it('with a wrong password stays live but not ready, names the check in /readyz and the reason in its log, never the password', async () => {
      const wrongFile = join(dir, 'wrong-password');
      await writeFile(wrongFile, wrongPassword);
      const worker = await startHearth({ name: 'tls-worker-wrong', env: serveEnv('w2', wrongFile), waitFor: 'live' });
      procs.push(worker);
      // /readyz names the failing check only (it is unauthenticated); the log line says why.
      const verbose = await waitFor(
        async () => {
          const res = await fetch(`${worker.opsUrl}/readyz?verbose`);
          const text = await res.text();
          return res.status === 503 && text.includes('[-]job-bus failed') && worker.logs().some((l) => l.reason === 'credentials') ? text : undefined;
        },
        { timeoutMs: 15_000, what: '/readyz to report the refusal' },
      );
      expect(verbose).not.toContain('RabbitMQ');
      expect(worker.output()).toMatch(/RabbitMQ refused the login of user \\"hearth\\" \(PLAIN\)/);
      expect((await fetch(`${worker.opsUrl}/livez`)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 1_000));
      expect(worker.process.alive).toBe(true);
      expect((await fetch(`${worker.opsUrl}/readyz`)).status).toBe(503);
      for (const s of [wrongPassword, password]) expect(worker.output()).not.toContain(s);
      expect(worker.logs().some((l) => l.level === 'error' && l.reason === 'credentials')).toBe(true);
    });
  });

  it('refuses a user without permissions on the vhost', async () => {
    await expectRefused(
      { HEARTH_AMQP_URL: rabbit.url(`outsider:${narrowPassword}@`), HEARTH_AMQP_CA_FILE: pki.ca.cert },
      'permission',
      /refused vhost "hearth-secure" to user "outsider"/,
      [narrowPassword],
    );
  });
});

describe.skipIf(!openssl)('RabbitMQ with mutual TLS and EXTERNAL (the user is the certificate\'s CN)', () => {
  let dir: string;
  let pki: TestPki;
  let otherPki: TestPki;
  let rabbit: TlsRabbit;
  const tls = (client: { cert: string; key: string } | undefined): Record<string, string> => ({
    HEARTH_AMQP_CA_FILE: pki.ca.cert,
    ...(client ? { HEARTH_AMQP_CERT_FILE: client.cert, HEARTH_AMQP_KEY_FILE: client.key } : {}),
  });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-amqp-mtls-'));
    pki = await makePki(dir, ['hearth', 'stranger']);
    otherPki = await makePki(dir, ['hearth'], 'other-ca');
    rabbit = await startTlsRabbit(pki, { mtls: true });
    await rabbit.addUser('hearth', undefined, HEARTH_PERMISSION);
  });
  afterAll(async () => {
    await rabbit?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('logs hearth in with its client certificate and no password', async () => {
    const t = await busFrom({ HEARTH_AMQP_URL: rabbit.url(), ...tls(pki.clients.hearth) });
    try {
      await t.bus.waitUntilReady({ timeoutMs: 15_000 });
      await roundTrip(t.bus);
      const mine = (await rabbit.connections()).filter((c) => c.user === 'hearth');
      expect(mine).toHaveLength(1);
      expect(mine[0]).toMatchObject({ vhost: rabbit.vhost, ssl: true, auth_mechanism: 'EXTERNAL' });
    } finally {
      await t.close();
    }
  });

  it('refuses a client without a certificate', async () => {
    await expectRefused({ HEARTH_AMQP_URL: rabbit.url(), ...tls(undefined) }, 'client-certificate', /requires a client certificate .*set amqp.certFile and amqp.keyFile/, []);
  });

  it('refuses a certificate from another CA', async () => {
    await expectRefused(
      { HEARTH_AMQP_URL: rabbit.url(), HEARTH_AMQP_CA_FILE: pki.ca.cert, HEARTH_AMQP_CERT_FILE: otherPki.clients.hearth!.cert, HEARTH_AMQP_KEY_FILE: otherPki.clients.hearth!.key },
      'tls',
      /rejected hearth's client certificate \(ERR_SSL_TLSV1_ALERT_UNKNOWN_CA\)/,
      [],
    );
  });

  it('refuses a certificate whose CN is no RabbitMQ user', async () => {
    await expectRefused({ HEARTH_AMQP_URL: rabbit.url(), ...tls(pki.clients.stranger) }, 'credentials', /client certificate \(EXTERNAL\)/, []);
  });
});
