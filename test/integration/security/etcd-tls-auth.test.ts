import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { EtcdServer } from '../../support/etcd.js';
import { requireTool, run } from '../deploy/tools.js';
import { makePki, type TestPki } from './certs.js';

// hearth's etcd client (src/etcd/client.ts, configured through etcd.*) against etcd set up as
// docs/security.md recommends: TLS with client certificates, or TLS with user and password,
// and in both cases authentication on with a role limited to hearth's prefix.

const openssl = requireTool('openssl', 'openssl');
const etcdctl = requireTool('etcdctl', 'etcd-client');

const PREFIX = '/hearth-secure';

/** etcdctl against the test server, as root (certificate or password). */
async function ctl(server: EtcdServer, pki: TestPki, auth: string[], ...args: string[]): Promise<string> {
  const res = await run('etcdctl', [`--endpoints=${server.url}`, `--cacert=${pki.ca.cert}`, '--dial-timeout=2s', ...auth, ...args], {
    env: { PATH: process.env.PATH, ETCDCTL_API: '3' },
  });
  if (res.code !== 0) throw new Error(`etcdctl ${args.join(' ')}: ${res.stderr}`);
  return res.stdout;
}

/** Creates root and a `hearth` role that may only touch PREFIX, then turns authentication on. */
async function enableAuth(server: EtcdServer, pki: TestPki, root: string[], hearthPassword?: string): Promise<void> {
  await ctl(server, pki, root, 'user', 'add', 'root', '--new-user-password=root-secret-password');
  await ctl(server, pki, root, 'user', 'grant-role', 'root', 'root');
  await ctl(server, pki, root, 'role', 'add', 'hearth');
  await ctl(server, pki, root, 'role', 'grant-permission', 'hearth', 'readwrite', '--prefix=true', `${PREFIX}/`);
  await ctl(server, pki, root, 'user', 'add', 'hearth', hearthPassword ? `--new-user-password=${hearthPassword}` : '--no-password');
  await ctl(server, pki, root, 'user', 'grant-role', 'hearth', 'hearth');
  await ctl(server, pki, root, 'auth', 'enable');
}

/** hearth's etcd client, from hearth's own configuration loader. */
async function hearthClient(server: EtcdServer, etcdEnv: Record<string, string>): Promise<Etcd3> {
  const config = await loadConfig({
    env: {
      HEARTH_ETCD_ENDPOINTS: server.url,
      HEARTH_AMQP_URL: 'amqp://127.0.0.1:1/unused',
      HEARTH_ETCD_CALL_TIMEOUT_MS: '2000',
      ...etcdEnv,
    },
  });
  return createEtcdClient(config.etcd);
}

async function roundTrip(client: Etcd3, key: string): Promise<string | null> {
  try {
    await client.put(key).value('v');
    return await client.get(key).string();
  } finally {
    client.close();
  }
}

describe.skipIf(!openssl || !etcdctl)('etcd with TLS and client-certificate authentication', () => {
  let dir: string;
  let pki: TestPki;
  let otherPki: TestPki;
  let server: EtcdServer;
  let root: string[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-etcd-mtls-'));
    pki = await makePki(dir, ['root', 'hearth', 'stranger']);
    otherPki = await makePki(dir, ['hearth'], 'other-ca');
    root = [`--cert=${pki.clients.root!.cert}`, `--key=${pki.clients.root!.key}`];
    server = await EtcdServer.start({
      scheme: 'https',
      args: ['--cert-file', pki.server.cert, '--key-file', pki.server.key, '--client-cert-auth', '--trusted-ca-file', pki.ca.cert],
      ready: async (s) => ctl(s, pki, root, 'endpoint', 'health').then(() => true),
    });
    await enableAuth(server, pki, root);
  });
  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const tls = (client: { cert: string; key: string } | undefined, ca?: string): Record<string, string> => ({
    HEARTH_ETCD_CA_FILE: ca ?? pki.ca.cert,
    ...(client ? { HEARTH_ETCD_CERT_FILE: client.cert, HEARTH_ETCD_KEY_FILE: client.key } : {}),
  });

  it('lets hearth in with its certificate, whose CN is the etcd user', async () => {
    expect(await roundTrip(await hearthClient(server, tls(pki.clients.hearth)), `${PREFIX}/k`)).toBe('v');
  });

  it('keeps hearth inside its prefix', async () => {
    await expect(roundTrip(await hearthClient(server, tls(pki.clients.hearth)), '/elsewhere/k')).rejects.toThrow(/permission denied/i);
  });

  it('refuses a certificate whose CN is no etcd user with rights', async () => {
    await expect(roundTrip(await hearthClient(server, tls(pki.clients.stranger)), `${PREFIX}/k`)).rejects.toThrow();
  });

  it('refuses a client without a certificate, or with one from another CA', async () => {
    await expect(roundTrip(await hearthClient(server, tls(undefined)), `${PREFIX}/k`)).rejects.toThrow();
    const foreign = { HEARTH_ETCD_CA_FILE: pki.ca.cert, HEARTH_ETCD_CERT_FILE: otherPki.clients.hearth!.cert, HEARTH_ETCD_KEY_FILE: otherPki.clients.hearth!.key };
    await expect(roundTrip(await hearthClient(server, foreign), `${PREFIX}/k`)).rejects.toThrow();
  });

  it('does not talk to a server its CA did not sign', async () => {
    await expect(roundTrip(await hearthClient(server, tls(pki.clients.hearth, otherPki.ca.cert)), `${PREFIX}/k`)).rejects.toThrow();
  });
});

describe.skipIf(!openssl || !etcdctl)('etcd with TLS and user/password authentication', () => {
  const password = `hearth-etcd-${Date.now().toString(36)}-password`;
  let dir: string;
  let pki: TestPki;
  let server: EtcdServer;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-etcd-password-'));
    pki = await makePki(dir, []);
    server = await EtcdServer.start({
      scheme: 'https',
      args: ['--cert-file', pki.server.cert, '--key-file', pki.server.key],
      ready: async (s) => ctl(s, pki, [], 'endpoint', 'health').then(() => true),
    });
    await enableAuth(server, pki, [], password);
  });
  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const env = (pw: string): Record<string, string> => ({ HEARTH_ETCD_CA_FILE: pki.ca.cert, HEARTH_ETCD_USERNAME: 'hearth', HEARTH_ETCD_PASSWORD: pw });

  it('lets hearth in with its user and password, inside its prefix only', async () => {
    expect(await roundTrip(await hearthClient(server, env(password)), `${PREFIX}/k`)).toBe('v');
    await expect(roundTrip(await hearthClient(server, env(password)), '/elsewhere/k')).rejects.toThrow(/permission denied/i);
  });

  it('reads the password from etcd.passwordFile (a mounted Secret) as well', async () => {
    const file = join(dir, 'etcd-password');
    await writeFile(file, `${password}\n`, { mode: 0o600 });
    const fromFile = { HEARTH_ETCD_CA_FILE: pki.ca.cert, HEARTH_ETCD_USERNAME: 'hearth', HEARTH_ETCD_PASSWORD_FILE: file };
    expect(await roundTrip(await hearthClient(server, fromFile), `${PREFIX}/from-file`)).toBe('v');
    await writeFile(file, `${password}-wrong\n`);
    await expect(roundTrip(await hearthClient(server, fromFile), `${PREFIX}/from-file`)).rejects.toThrow(/authentication failed|invalid user ID or password/i);
  });

  it('refuses a wrong password, and the error does not repeat the password', async () => {
    const wrong = `${password}-wrong`;
    const err = await roundTrip(await hearthClient(server, env(wrong)), `${PREFIX}/k`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/authentication failed|invalid user ID or password/i);
    expect(String((err as Error).stack)).not.toContain(wrong);
  });

  it('refuses a client that sends no credentials', async () => {
    await expect(roundTrip(await hearthClient(server, { HEARTH_ETCD_CA_FILE: pki.ca.cert }), `${PREFIX}/k`)).rejects.toThrow(/user name is empty|permission denied/i);
  });
});
