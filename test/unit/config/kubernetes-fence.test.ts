// fencing.method kubernetes without what the fence needs is a configuration error at start
// (exit 2), each naming its option and environment variable.
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/program.js';
import { inClusterApiServer } from '../../../src/config/environment.js';
import { parseBearerToken } from '../../../src/config/kubernetes-fence.js';
import { loadConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';
import { makePki } from '../../integration/security/certs.js';

const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.payload.signature';
let dir: string;
let sa: string;
let env: Record<string, string>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-k8s-fence-config-'));
  const pki = await makePki(dir, []);
  // A service-account directory as the kubelet mounts it: token, ca.crt, namespace.
  sa = join(dir, 'serviceaccount');
  await mkdir(sa);
  await writeFile(join(sa, 'token'), TOKEN);
  await writeFile(join(sa, 'namespace'), 'hearth');
  await copyFile(pki.ca.cert, join(sa, 'ca.crt'));
  env = {
    HEARTH_DATA_DIR: dir,
    HEARTH_FENCING_METHOD: 'kubernetes',
    HEARTH_FENCING_KUBERNETES_TOKEN_FILE: join(sa, 'token'),
    HEARTH_FENCING_KUBERNETES_CA_FILE: join(sa, 'ca.crt'),
    HEARTH_FENCING_POD_NAME: 'hearth-1',
    HEARTH_FENCING_POD_UID: '1f0c7a52-8a7e-4c1e-9d55-3e0f0c1d2e3f',
    HEARTH_FENCING_POD_NAMESPACE: 'hearth',
    HEARTH_FENCING_POD_NODE: 'node-a',
    KUBERNETES_SERVICE_HOST: '10.96.0.1',
    KUBERNETES_SERVICE_PORT: '443',
  };
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function issuesOf(overrides: Record<string, string | undefined>): Promise<ConfigError['issues']> {
  const err = await loadConfig({ env: { ...env, ...overrides } }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as Error).message).not.toContain(TOKEN);
  return (err as ConfigError).issues;
}

describe('fencing.method kubernetes', () => {
  it('loads with a mounted service account in a pod', async () => {
    const config = await loadConfig({ env });
    expect(config.fencing.method).toBe('kubernetes');
    expect(config.fencing.kubernetes.apiServer).toBe('');
    expect(inClusterApiServer(env)).toBe('https://10.96.0.1:443');
    expect(inClusterApiServer({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' })).toBe('https://[fd00::1]:6443');
  });

  it('needs an API server: configured, or the in-cluster one', async () => {
    const issues = await issuesOf({ KUBERNETES_SERVICE_HOST: undefined, KUBERNETES_SERVICE_PORT: undefined });
    expect(issues).toEqual([
      { path: 'fencing.kubernetes.apiServer', env: 'HEARTH_FENCING_KUBERNETES_API_SERVER', message: expect.stringContaining('KUBERNETES_SERVICE_HOST is not set') as unknown },
    ]);
    const configured = await loadConfig({ env: { ...env, KUBERNETES_SERVICE_HOST: undefined, HEARTH_FENCING_KUBERNETES_API_SERVER: 'https://k8s.example:6443' } });
    expect(configured.fencing.kubernetes.apiServer).toBe('https://k8s.example:6443');
  });

  it('refuses an API server that is not an https origin (the fence sends a bearer token)', async () => {
    for (const url of ['http://k8s.example:6443', 'https://user:pw@k8s.example', 'https://k8s.example/api', 'not a url']) {
      const issues = await issuesOf({ HEARTH_FENCING_KUBERNETES_API_SERVER: url });
      expect(issues.map((i) => [i.path, i.env]), url).toEqual([['fencing.kubernetes.apiServer', 'HEARTH_FENCING_KUBERNETES_API_SERVER']]);
      expect(issues[0]?.message).not.toContain('pw@');
    }
  });

  it('needs a readable token file holding a token', async () => {
    await writeFile(join(dir, 'empty'), '\n');
    await writeFile(join(dir, 'two-words'), 'two words');
    for (const [file, problem] of [
      [join(dir, 'missing'), 'cannot be read (no such file, ENOENT)'],
      [join(dir, 'empty'), 'is empty'],
      [join(dir, 'two-words'), 'printable ASCII characters with no spaces'],
      [dir, 'it is a directory'],
    ] as const) {
      const issues = await issuesOf({ HEARTH_FENCING_KUBERNETES_TOKEN_FILE: file, HEARTH_FENCING_KUBERNETES_NAMESPACE: 'hearth' });
      expect(issues, file).toEqual([{ path: 'fencing.kubernetes.tokenFile', env: 'HEARTH_FENCING_KUBERNETES_TOKEN_FILE', message: expect.stringContaining(problem) as unknown }]);
      expect(issues[0]?.message).toContain(file);
    }
    expect(await issuesOf({ HEARTH_FENCING_KUBERNETES_TOKEN_FILE: '', HEARTH_FENCING_KUBERNETES_NAMESPACE: 'hearth' })).toEqual([
      { path: 'fencing.kubernetes.tokenFile', env: 'HEARTH_FENCING_KUBERNETES_TOKEN_FILE', message: 'fencing.method kubernetes needs the service-account token file' },
    ]);
  });

  it('needs a readable CA file holding a certificate', async () => {
    for (const [file, problem] of [
      [join(dir, 'missing.crt'), 'no such file'],
      [join(sa, 'token'), 'holds no PEM certificate'],
    ] as const) {
      const issues = await issuesOf({ HEARTH_FENCING_KUBERNETES_CA_FILE: file });
      expect(issues, file).toEqual([{ path: 'fencing.kubernetes.caFile', env: 'HEARTH_FENCING_KUBERNETES_CA_FILE', message: expect.stringContaining(problem) as unknown }]);
    }
    await writeFile(join(dir, 'broken.crt'), '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n');
    expect((await issuesOf({ HEARTH_FENCING_KUBERNETES_CA_FILE: join(dir, 'broken.crt') }))[0]?.message).toContain('holds no certificate that can be parsed');
    expect((await issuesOf({ HEARTH_FENCING_KUBERNETES_CA_FILE: '' }))[0]).toMatchObject({ path: 'fencing.kubernetes.caFile', env: 'HEARTH_FENCING_KUBERNETES_CA_FILE' });
  });

  it('needs the namespace file beside the token when no namespace is set', async () => {
    const elsewhere = join(dir, 'elsewhere');
    await mkdir(elsewhere, { recursive: true });
    await writeFile(join(elsewhere, 'token'), TOKEN);
    const issues = await issuesOf({ HEARTH_FENCING_KUBERNETES_TOKEN_FILE: join(elsewhere, 'token') });
    expect(issues).toEqual([
      { path: 'fencing.kubernetes.namespace', env: 'HEARTH_FENCING_KUBERNETES_NAMESPACE', message: expect.stringContaining(`${join(elsewhere, 'namespace')}, which cannot be read`) as unknown },
    ]);
    const set = await loadConfig({ env: { ...env, HEARTH_FENCING_KUBERNETES_TOKEN_FILE: join(elsewhere, 'token'), HEARTH_FENCING_KUBERNETES_NAMESPACE: 'hearth' } });
    expect(set.fencing.kubernetes.namespace).toBe('hearth');
  });

  it("needs this process's own pod (name and uid), so the others can fence it", async () => {
    const issues = await issuesOf({ HEARTH_FENCING_POD_NAME: undefined, HEARTH_FENCING_POD_UID: undefined });
    expect(issues.map((i) => [i.path, i.env])).toEqual([
      ['fencing.pod.name', 'HEARTH_FENCING_POD_NAME'],
      ['fencing.pod.uid', 'HEARTH_FENCING_POD_UID'],
    ]);
    expect(issues[1]?.message).toContain('metadata.uid');
  });

  it('reads no file with secretFiles skip (a configuration for another machine), and nothing with another method', async () => {
    const missing = { HEARTH_FENCING_KUBERNETES_TOKEN_FILE: join(dir, 'missing'), HEARTH_FENCING_KUBERNETES_CA_FILE: join(dir, 'missing'), KUBERNETES_SERVICE_HOST: undefined };
    await expect(loadConfig({ env: { ...env, ...missing }, secretFiles: 'skip' })).resolves.toBeDefined();
    await expect(loadConfig({ env: { ...env, ...missing, HEARTH_FENCING_METHOD: 'none', HEARTH_FENCING_POD_UID: '' } })).resolves.toBeDefined();
  });

  it('makes hearth config check exit 2, naming the option and its variable', async () => {
    let err = '';
    const code = await runCli(['config', 'check'], { out: () => undefined, err: (t) => (err += `${t}\n`) }, { ...env, HEARTH_FENCING_KUBERNETES_TOKEN_FILE: join(dir, 'missing') });
    expect(code).toBe(2);
    expect(err).toContain('fencing.kubernetes.tokenFile (HEARTH_FENCING_KUBERNETES_TOKEN_FILE)');
  });
});

describe('parseBearerToken', () => {
  it('drops surrounding whitespace and refuses what cannot be a token, never quoting it', () => {
    expect(parseBearerToken(Buffer.from(`${TOKEN}\n`))).toEqual({ ok: true, value: TOKEN });
    const bad = parseBearerToken(Buffer.from('secret one\nsecret two'));
    expect(bad.ok).toBe(false);
    expect(JSON.stringify(bad)).not.toContain('secret');
  });
});
