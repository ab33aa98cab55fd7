// The kubernetes fence against a fake API server over real HTTPS (a throwaway CA made with
// openssl): every decision, credentials re-read per attempt, and never a write.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Config } from '../../../src/config/schema.js';
import { ConfigError } from '../../../src/errors.js';
import type { FenceTarget } from '../../../src/fencing/method.js';
import { KubernetesFence, OUT_OF_SERVICE_TAINT, TERMINATING_RETRY_MS } from '../../../src/fencing/kubernetes-method.js';
import type { ProcessIdentity } from '../../../src/identity.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { type FakeKubeApi, kubeNode, kubePod, kubeStatus, startFakeKubeApi } from '../../support/fake-kube-api.js';
import { makePki, type TestPki } from '../../integration/security/certs.js';

const NS = 'hearth';
const POD_PATH = `/api/v1/namespaces/${NS}/pods/hearth-1`;
const NODE_PATH = '/api/v1/nodes/node-a';
const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.first-token.signature';

let dir: string;
let pki: TestPki;
let otherPki: TestPki;
let api: FakeKubeApi;
let tokenFile: string;
/** Every request the fake saw in this file. */
const seen: FakeKubeApi['requests'] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-k8s-fence-'));
  pki = await makePki(dir, []);
  otherPki = await makePki(dir, [], 'some-other-ca');
  api = await startFakeKubeApi(pki.server);
  tokenFile = join(dir, 'token');
  await writeFile(tokenFile, `${TOKEN}\n`);
  await writeFile(join(dir, 'namespace'), NS);
  api.tokens.add(TOKEN);
});
afterEach(() => {
  // hearth never writes to the API server: every request of every test is a read.
  seen.push(...api.requests.splice(0));
  expect(seen.filter((r) => r.method !== 'GET')).toEqual([]);
  api.reset();
});
afterAll(async () => {
  await api?.close();
  await rm(dir, { recursive: true, force: true });
});

function fence(config: Partial<Config['fencing']['kubernetes']> = {}, requestTimeoutMs?: number): KubernetesFence {
  return new KubernetesFence({ apiServer: api.url, tokenFile, caFile: pki.ca.cert, namespace: '', ...config }, silentLogger(), requestTimeoutMs === undefined ? {} : { requestTimeoutMs });
}

function target(pod: Partial<NonNullable<ProcessIdentity['pod']>> | null = {}): FenceTarget {
  const process: ProcessIdentity = {
    pid: 7,
    startTicks: '1234',
    bootId: 'b00t',
    pidNamespace: 'pid:[4026531836]',
    hostname: 'hearth-1',
    addresses: ['10.0.0.7'],
    ...(pod === null ? {} : { pod: { name: 'hearth-1', uid: 'uid-old', namespace: NS, node: 'node-a', ...pod } }),
  };
  return { incarnation: 'hearth-1@file:6a1f', host: 'hearth-1@file', cluster: 'hearth@file', process, diedAtMs: 0 };
}

const never = new AbortController().signal;

describe('the kubernetes fence decides from the pod and its node', () => {
  it('is fenced when the pod is gone (404)', async () => {
    const outcome = await fence().fence(target(), never);
    expect(outcome).toEqual({ fenced: true, detail: `pod ${NS}/hearth-1 is gone (the API server answers 404)` });
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`GET ${POD_PATH}`]);
    expect(api.requests[0]?.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('is fenced when the name belongs to a new pod (another uid): the old pod object is gone', async () => {
    api.reply(POD_PATH, kubePod('hearth-1', NS, 'uid-new'));
    const outcome = await fence().fence(target(), never);
    expect(outcome.fenced).toBe(true);
    expect(outcome).toMatchObject({ detail: expect.stringContaining('uid-new') as unknown });
  });

  it('is not fenced while graceful deletion is under way, and asks to be asked again soon', async () => {
    api.reply(POD_PATH, kubePod('hearth-1', NS, 'uid-old', { deletionTimestamp: '2025-01-01T00:00:00Z' }));
    api.reply(NODE_PATH, kubeNode('node-a'));
    const outcome = await fence().fence(target(), never);
    expect(outcome).toEqual({ fenced: false, reason: expect.stringContaining('is being deleted') as unknown, retryAfterMs: TERMINATING_RETRY_MS });
  });

  it('is not fenced while the pod runs on a node without the out-of-service taint', async () => {
    api.reply(POD_PATH, kubePod('hearth-1', NS, 'uid-old'));
    api.reply(NODE_PATH, kubeNode('node-a', [{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' }]));
    const outcome = await fence().fence(target(), never);
    expect(outcome.fenced).toBe(false);
    expect(outcome).toMatchObject({ reason: expect.stringMatching(/still exists on node node-a .*no node\.kubernetes\.io\/out-of-service taint/) as unknown });
    expect(outcome).not.toHaveProperty('retryAfterMs');
    expect(api.requests.map((r) => r.path)).toEqual([POD_PATH, NODE_PATH]);
  });

  it('is fenced when hearth\'s container restarted (or stopped) after the process started, though the pod lives on under its uid', async () => {
    const started = Date.parse('2026-12-06T10:00:00.400Z');
    const withStart = (): FenceTarget => {
      const t = target({ container: 'hearth' });
      return { ...t, process: { ...t.process!, startedAtMs: started } };
    };
    const sidecar = { name: 'log-shipper', restartCount: 4, state: { running: { startedAt: '2026-12-06T10:09:00Z' } } };
    // The same container instance (it started just before the process): not fenced.
    api.reply(POD_PATH, kubePod('hearth-1', NS, 'uid-old', { containerStatuses: [sidecar, { name: 'hearth', restartCount: 0, state: { running: { startedAt: '2026-12-06T10:00:00Z' } } }] }));
    api.reply(NODE_PATH, kubeNode('node-a'));
    expect((await fence().fence(withStart(), never)).fenced).toBe(false);
    // Restarted since (a sidecar restarting alone says nothing).
    api.reply(POD_PATH, kubePod('hearth-1', NS, 'uid-old', { containerStatuses: [sidecar, { name: 'hearth', restartCount: 1, state: { running: { startedAt: '2026-12-06T10:05:01Z' } } }] }));
    expect(await fence().fence(withStart(), never)).toMatchObject({ fenced: true, detail: expect.stringContaining('container hearth restarted at 2026-12-06T10:05:01Z') as unknown });
    // Crash-looping: waiting, its last instance terminated after the process started.
    const waiting = { name: 'hearth', restartCount: 3, state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { finishedAt: '2026-12-06T10:05:00Z', exitCode: 137 } } };
    api.reply(POD_PATH, kubePod('hearth-1', NS, 'uid-old', { containerStatuses: [waiting] }));
    expect(await fence().fence(withStart(), never)).toMatchObject({ fenced: true, detail: expect.stringContaining('waits to restart') as unknown });
    // Terminated.
    api.reply(POD_PATH, kubePod('hearth-1', NS, 'uid-old', { containerStatuses: [{ name: 'hearth', restartCount: 0, state: { terminated: { reason: 'OOMKilled', exitCode: 137 } } }] }));
    expect(await fence().fence(withStart(), never)).toMatchObject({ fenced: true, detail: expect.stringContaining('has terminated (OOMKilled)') as unknown });
    // Without the process start on record (an older member) nothing is concluded from the containers.
    expect((await fence().fence(target({ container: 'hearth' }), never)).fenced).toBe(false);
  });

  it('is fenced when the pod still exists but its node carries the out-of-service taint (running or terminating)', async () => {
    api.reply(NODE_PATH, kubeNode('node-a', [{ key: OUT_OF_SERVICE_TAINT, value: 'nodeshutdown', effect: 'NoExecute' }]));
    for (const pod of [kubePod('hearth-1', NS, 'uid-old'), kubePod('hearth-1', NS, 'uid-old', { deletionTimestamp: '2025-01-01T00:00:00Z' })]) {
      api.reply(POD_PATH, pod);
      const outcome = await fence().fence(target(), never);
      expect(outcome).toEqual({ fenced: true, detail: expect.stringContaining(`node node-a carries the taint ${OUT_OF_SERVICE_TAINT}=nodeshutdown:NoExecute`) as unknown });
    }
  });

  it('says so when it may not read nodes (403: namespaced RBAC only)', async () => {
    api.reply(POD_PATH, kubePod('hearth-1', NS, 'uid-old'));
    api.reply(NODE_PATH, kubeStatus(403, 'Forbidden', 'nodes "node-a" is forbidden: User "system:serviceaccount:hearth:hearth-fencing" cannot get resource "nodes"'));
    const outcome = await fence().fence(target(), never);
    expect(outcome).toMatchObject({ fenced: false, reason: expect.stringContaining('may not read nodes (403)') as unknown });
  });

  it('uses the node the pod object names when none is recorded', async () => {
    api.reply(POD_PATH, kubePod('hearth-1', NS, 'uid-old', { node: 'node-b' }));
    api.reply('/api/v1/nodes/node-b', kubeNode('node-b', [{ key: OUT_OF_SERVICE_TAINT, effect: 'NoExecute' }]));
    expect(await fence().fence(target({ node: '' }), never)).toMatchObject({ fenced: true });
  });

  it('is not fenced for a target with no pod recorded, and asks nothing', async () => {
    expect(await fence().fence(target(null), never)).toEqual({ fenced: false, reason: 'no pod recorded for hearth-1@file:6a1f' });
    expect(api.requests).toEqual([]);
  });
});

describe('the kubernetes fence fails as a value', () => {
  it('reports a refused token (401) and a forbidden pod read (403), never fenced', async () => {
    await writeFile(join(dir, 'stranger'), 'not-a-token-the-server-knows');
    expect(await fence({ tokenFile: join(dir, 'stranger') }).fence(target(), never)).toMatchObject({
      fenced: false,
      reason: expect.stringContaining('does not accept the token (401)') as unknown,
    });
    api.reply(POD_PATH, kubeStatus(403, 'Forbidden', 'pods "hearth-1" is forbidden'));
    expect(await fence().fence(target(), never)).toMatchObject({ fenced: false, reason: expect.stringContaining('may not read pods in namespace hearth (403') as unknown });
  });

  it('reports server errors and answers that are not a pod', async () => {
    api.reply(POD_PATH, kubeStatus(503, 'ServiceUnavailable', 'etcd is down'));
    expect(await fence().fence(target(), never)).toMatchObject({ fenced: false, reason: expect.stringContaining('answers 503: etcd is down') as unknown });
    api.reply(POD_PATH, { status: 200, body: { kind: 'Status' } });
    expect(await fence().fence(target(), never)).toMatchObject({ fenced: false, reason: expect.stringContaining('not a pod') as unknown });
  });

  it('does not trust an API server whose certificate another CA signed', async () => {
    const outcome = await fence({ caFile: otherPki.ca.cert }).fence(target(), never);
    expect(outcome).toMatchObject({ fenced: false, reason: expect.stringContaining('not trusted by fencing.kubernetes.caFile') as unknown });
    expect(api.requests).toEqual([]);
  });

  it('reports an API server it cannot reach', async () => {
    const closed = await startFakeKubeApi(pki.server);
    await closed.close();
    const outcome = await fence({ apiServer: closed.url }).fence(target(), never);
    expect(outcome).toMatchObject({ fenced: false, reason: expect.stringContaining('cannot reach the API server') as unknown });
  });

  it('gives up on an answer that does not come, after the request timeout or when aborted', async () => {
    api.reply(POD_PATH, 'hang');
    expect(await fence({}, 200).fence(target(), never)).toMatchObject({ fenced: false, reason: expect.stringContaining('no answer within 200 ms') as unknown });
    const controller = new AbortController();
    const attempt = fence({}, 600_000).fence(target(), controller.signal);
    await vi.waitFor(() => expect(api.requests.length).toBe(2));
    controller.abort();
    expect(await attempt).toMatchObject({ fenced: false, reason: expect.stringContaining('aborted') as unknown });
    const aborted = new AbortController();
    aborted.abort();
    expect(await fence().fence(target(), aborted.signal)).toEqual({ fenced: false, reason: 'aborted' });
    expect(api.requests).toHaveLength(2);
  });

  it('reports a token or CA file it cannot read, naming the option, and never quotes the token', async () => {
    const noToken = await fence({ tokenFile: join(dir, 'missing') }).fence(target(), never);
    expect(noToken).toMatchObject({ fenced: false, reason: expect.stringMatching(/^fencing\.kubernetes\.tokenFile .*missing cannot be read \(no such file/) as unknown });
    const noCa = await fence({ caFile: join(dir, 'namespace') }).fence(target(), never);
    expect(noCa).toMatchObject({ fenced: false, reason: expect.stringContaining('fencing.kubernetes.caFile') as unknown });
    expect(JSON.stringify([noToken, noCa])).not.toContain(TOKEN);
    expect(api.requests).toEqual([]);
  });
});

describe('the kubernetes fence configuration', () => {
  it('re-reads the token on every attempt (projected tokens rotate)', async () => {
    const rotating = join(dir, 'rotating-token');
    await writeFile(rotating, 'token-generation-one\n');
    api.tokens.add('token-generation-one');
    const f = fence({ tokenFile: rotating });
    expect(await f.fence(target(), never)).toMatchObject({ fenced: true });
    await writeFile(rotating, 'token-generation-two\n');
    api.tokens.delete('token-generation-one');
    api.tokens.add('token-generation-two');
    expect(await f.fence(target(), never)).toMatchObject({ fenced: true });
    expect(api.requests.map((r) => r.authorization)).toEqual(['Bearer token-generation-one', 'Bearer token-generation-two']);
  });

  it("takes the namespace from the service account's namespace file when neither the record nor the option names one", async () => {
    await fence().fence(target({ namespace: '' }), never);
    await fence({ namespace: 'configured' }).fence(target({ namespace: '' }), never);
    await fence({ namespace: 'configured' }).fence(target({ namespace: 'recorded' }), never);
    expect(api.requests.map((r) => r.path)).toEqual([POD_PATH, '/api/v1/namespaces/configured/pods/hearth-1', '/api/v1/namespaces/recorded/pods/hearth-1']);
  });

  it('uses the in-cluster API server when none is configured, and refuses to start without one', async () => {
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '127.0.0.1');
    vi.stubEnv('KUBERNETES_SERVICE_PORT', String(api.port));
    try {
      expect(await fence({ apiServer: '' }).fence(target(), never)).toMatchObject({ fenced: true });
      vi.stubEnv('KUBERNETES_SERVICE_HOST', '');
      expect(() => fence({ apiServer: '' })).toThrow(ConfigError);
    } finally {
      vi.unstubAllEnvs();
    }
    expect(() => fence({ apiServer: `http://127.0.0.1:${api.port}` })).toThrow(/https/);
    expect(api.requests).toHaveLength(1);
  });
});
