import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { effectiveAuthMode } from '../../../src/config/api-auth.js';
import { loadConfig, optionEntries } from '../../../src/config/load.js';
import { isClustered, parseListen } from '../../../src/config/rules.js';
import type { Config } from '../../../src/config/schema.js';
import { type K8sObject, type PodSpec, type Container, envFromSpec, findOne, volumeMountFor } from './k8s.js';
import { repoPath, requireTool, run } from './tools.js';

const kubectl = requireTool('kubectl', 'kubectl');

const OVERLAYS = { dev: 'hearth-dev', prod: 'hearth' } as const;
type Overlay = keyof typeof OVERLAYS;

let scratch: string;

async function render(dir: string): Promise<K8sObject[]> {
  const res = await run('kubectl', ['kustomize', dir]);
  expect(res.code, res.stderr).toBe(0);
  return parseAllDocuments(res.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

/** Renders an overlay with components added (monitoring, …), as a deployer's own overlay would. */
async function renderWithComponent(overlay: Overlay, ...components: string[]): Promise<K8sObject[]> {
  if (components.length === 0) components.push('monitoring');
  const dir = await mkdtemp(join(scratch, `${overlay}-${components.join('-')}-`));
  const rel = (p: string): string => relative(dir, repoPath(p)).split('\\').join(posix.sep);
  await writeFile(
    join(dir, 'kustomization.yaml'),
    [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      `namespace: ${OVERLAYS[overlay]}`,
      'resources:',
      `  - ${rel(`deploy/kubernetes/overlays/${overlay}`)}`,
      'components:',
      ...components.map((c) => `  - ${rel(`deploy/kubernetes/components/${c}`)}`),
      '',
    ].join('\n'),
  );
  return render(dir);
}

/** Loads the ConfigMap's config.yaml with hearth's own loader, in the pod's environment. */
async function podConfig(objects: K8sObject[], pod: PodSpec, container: Container): Promise<Config> {
  const configMapName = pod.volumes?.find((v) => v.name === 'config')?.configMap?.name;
  const configMap = findOne(objects, 'ConfigMap', configMapName);
  const file = join(scratch, `${configMapName}.yaml`);
  await writeFile(file, configMap.data?.['config.yaml'] ?? '');
  const env = envFromSpec(container, objects, { podName: 'hearth-0', namespace: findOne(objects, 'StatefulSet').metadata.namespace ?? 'default' });
  // HEARTH_CONFIG points into the ConfigMap's mount; read the copy written above instead.
  expect(env.HEARTH_CONFIG).toBe(`${volumeMountFor(container, 'config')?.mountPath}/config.yaml`);
  // The Secret files exist in the pod, not here; the test below checks that each is mounted.
  return loadConfig({ file, env: { ...env, HEARTH_CONFIG: undefined }, secretFiles: 'skip' });
}

/**
 * No environment variable carries a secret: none comes from a Secret (env or envFrom), none
 * sets an option hearth declares secret, and no value holds URL credentials.
 */
function expectNoSecretInEnv(container: Container): void {
  const secretOptions = new Set(optionEntries.filter((e) => e.spec.secret !== 'none').map((e) => e.env));
  for (const e of container.env ?? []) {
    expect(e.valueFrom?.secretKeyRef, `${e.name} from a Secret`).toBeUndefined();
    expect(secretOptions.has(e.name), `${e.name} is a secret option`).toBe(false);
    expect(e.value ?? '', e.name).not.toMatch(/:\/\/[^/\s]*:[^/\s]*@/);
  }
  expect((container.envFrom ?? []).filter((e) => e.secretRef), 'envFrom a Secret').toEqual([]);
}

/**
 * Every file the configuration names (and at least `required`) is in a read-only Secret
 * volume, never world-readable, mounted without subPath (so rotations arrive); a Secret the
 * overlay generates holds the key the file is read from.
 */
function expectSecretFilesMounted(objects: K8sObject[], pod: PodSpec, container: Container, config: Config, required: readonly string[]): void {
  const named: Record<string, string> = {
    'api.tokenFile': config.api.tokenFile,
    'etcd.passwordFile': config.etcd.passwordFile,
    'etcd.caFile': config.etcd.caFile,
    'etcd.certFile': config.etcd.certFile,
    'etcd.keyFile': config.etcd.keyFile,
    'amqp.passwordFile': config.amqp.passwordFile,
    'amqp.caFile': config.amqp.caFile,
    'amqp.certFile': config.amqp.certFile,
    'amqp.keyFile': config.amqp.keyFile,
  };
  for (const option of required) expect(named[option], option).not.toBe('');
  for (const [option, file] of Object.entries(named).filter(([, f]) => f !== '')) {
    const mount = (container.volumeMounts ?? []).find((m) => m.mountPath === dirname(file));
    expect(mount, `${option} ${file}`).toBeDefined();
    expect(mount!.readOnly, file).toBe(true);
    expect(mount!.subPath, file).toBeUndefined();
    const volume = pod.volumes?.find((v) => v.name === mount!.name);
    expect(volume?.secret?.secretName, file).toBeTruthy();
    expect((volume!.secret!.defaultMode ?? 0o644) & 0o007, file).toBe(0);
    expect(volume!.secret!.optional ?? false, file).toBe(false);
    const name = file.split('/').pop()!;
    const items = volume!.secret!.items;
    const key = items ? items.find((i) => i.path === name)?.key : name;
    expect(key, `${file} is projected from the Secret`).toBeDefined();
    const generated = objects.find((o) => o.kind === 'Secret' && o.metadata.name === volume!.secret!.secretName);
    if (generated) expect(Object.keys({ ...generated.data, ...generated.stringData }), file).toContain(key);
  }
}

const RBAC_KINDS = ['Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding'];
/** Where the kubelet mounts an automounted service-account token, CA and namespace. */
const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** hearth never writes to the API server, and never force-deletes a pod: no rule grants more than reading. */
function expectReadOnlyRbac(objects: readonly K8sObject[]): void {
  for (const o of objects.filter((x) => x.kind === 'Role' || x.kind === 'ClusterRole')) {
    for (const rule of o.rules ?? []) {
      expect(rule.verbs.filter((v) => !['get', 'list', 'watch'].includes(v)), `${o.kind}/${o.metadata.name}`).toEqual([]);
      expect(rule.resources?.some((r) => r.includes('/') || r === '*'), `${o.kind}/${o.metadata.name} subresources`).toBe(false);
    }
  }
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'hearth-kustomize-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe.skipIf(!kubectl).each(Object.keys(OVERLAYS) as Overlay[])('Kubernetes overlay %s', (overlay) => {
  const namespace = OVERLAYS[overlay];
  let objects: K8sObject[];
  let sts: K8sObject;
  let pod: PodSpec;
  let container: Container;
  let config: Config;

  beforeAll(async () => {
    objects = await render(repoPath(`deploy/kubernetes/overlays/${overlay}`));
    sts = findOne(objects, 'StatefulSet');
    pod = sts.spec!.template!.spec!;
    container = pod.containers.find((c) => c.name === 'hearth')!;
    config = await podConfig(objects, pod, container);
  });

  it('renders the expected objects, all in the overlay namespace', () => {
    const kinds = objects.map((o) => `${o.apiVersion}/${o.kind}`).sort();
    for (const k of ['v1/ServiceAccount', 'v1/ConfigMap', 'v1/Service', 'v1/PersistentVolumeClaim', 'apps/v1/StatefulSet', 'policy/v1/PodDisruptionBudget']) {
      expect(kinds, k).toContain(k);
    }
    expect(kinds.filter((k) => k === 'v1/Service')).toHaveLength(2);
    expect(kinds.some((k) => k.startsWith('monitoring.coreos.com'))).toBe(false);
    for (const o of objects) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(namespace);
  });

  it('runs a StatefulSet with parallel pods behind a headless governing Service that lists unready pods', () => {
    expect(sts.spec!.podManagementPolicy).toBe('Parallel');
    expect(sts.spec!.replicas).toBeGreaterThanOrEqual(3);
    const headless = findOne(objects, 'Service', sts.spec!.serviceName);
    expect(headless.spec!.clusterIP).toBe('None');
    expect(headless.spec!.publishNotReadyAddresses).toBe(true);
    // Rolling upgrades: one pod at a time, the next once the replacement has been ready a while.
    expect(sts.spec!.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { partition: 0 } });
    expect(sts.spec!.minReadySeconds).toBeGreaterThanOrEqual(5);
    const podLabels = sts.spec!.template!.metadata!.labels!;
    expect(podLabels).toMatchObject(sts.spec!.selector!.matchLabels!);
    for (const svc of objects.filter((o) => o.kind === 'Service')) expect(podLabels, svc.metadata.name).toMatchObject(svc.spec!.selector!);
  });

  it('uses the pod name as the host (downward API) and no service links, which would inject unknown HEARTH_* variables', () => {
    expect(container.env?.find((e) => e.name === 'HEARTH_HOST')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
    expect(pod.enableServiceLinks).toBe(false);
    const known = new Set([...optionEntries.map((e) => e.env), 'HEARTH_CONFIG']);
    for (const e of container.env ?? []) if (e.name.startsWith('HEARTH_')) expect(known, e.name).toContain(e.name);
  });

  it('passes no secret through the environment (child processes inherit it, /proc shows it): credentials are mounted files', () => {
    expectNoSecretInEnv(container);
    // The RabbitMQ password comes from a file, the URL names only the user.
    expect(config.amqp.passwordFile).not.toBe('');
    expect(new URL(config.amqp.url).username).toBe('hearth');
    expect(new URL(config.amqp.url).password).toBe('');
    expect(config.etcd.password).toBe('');
    const configMap = findOne(objects, 'ConfigMap', pod.volumes?.find((v) => v.name === 'config')?.configMap?.name);
    expect(configMap.data?.['config.yaml']).not.toMatch(/^\s*password:|:\/\/[^/\s]*:[^/\s]*@/im);
  });

  it('gives hearth a valid cluster configuration that requires an API token', () => {
    expect(isClustered(config)).toBe(true);
    expect(effectiveAuthMode(config.api)).toBe('token');
    expect(config.host).toBe('hearth-0');
  });

  it('mounts every file the configuration names, Secrets read-only and never world-readable', () => {
    const tls = overlay === 'prod' ? ['etcd.caFile', 'etcd.certFile', 'etcd.keyFile', 'amqp.caFile'] : [];
    expectSecretFilesMounted(objects, pod, container, config, ['api.tokenFile', 'amqp.passwordFile', ...tls]);
  });

  it('adds etcd user and password authentication with the etcd-password component, the password as a file too', async () => {
    const withPassword = await renderWithComponent(overlay, 'etcd-password');
    const p = findOne(withPassword, 'StatefulSet').spec!.template!.spec!;
    const c = p.containers.find((x) => x.name === 'hearth')!;
    const cfg = await podConfig(withPassword, p, c);
    expect(cfg.etcd.username).toBe('hearth');
    expect(cfg.etcd.passwordFile).toBe('/etc/hearth/etcd-auth/password');
    expectNoSecretInEnv(c);
    expectSecretFilesMounted(withPassword, p, c, cfg, ['etcd.passwordFile']);
    expect(p.volumes?.find((v) => v.name === volumeMountFor(c, undefined, cfg.etcd.passwordFile)?.name)?.secret?.secretName).toBe('hearth-etcd-auth');
  });

  it('mounts no service-account token and grants no API access: hearth reads the Kubernetes API only with a fencing component', () => {
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(findOne(objects, 'ServiceAccount', pod.serviceAccountName).automountServiceAccountToken).toBe(false);
    expect(objects.filter((o) => RBAC_KINDS.includes(o.kind)).map((o) => o.kind)).toEqual([]);
    expect(config.fencing.method).not.toBe('kubernetes');
  });

  it('fences through the API with the fencing-kubernetes component: its own service account, read-only pod access, the pod recorded', async () => {
    const fencing = await renderWithComponent(overlay, 'fencing-kubernetes');
    const p = findOne(fencing, 'StatefulSet').spec!.template!.spec!;
    const c = p.containers.find((x) => x.name === 'hearth')!;
    expect(p.serviceAccountName).toBe('hearth-fencing');
    expect(p.automountServiceAccountToken).toBe(true);
    // The account itself mounts nothing into pods that do not ask.
    expect(findOne(fencing, 'ServiceAccount', 'hearth-fencing')).toMatchObject({ automountServiceAccountToken: false, metadata: { namespace } });

    const role = findOne(fencing, 'Role');
    expect(role.metadata.namespace).toBe(namespace);
    expect(role.rules).toEqual([{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }]);
    const binding = findOne(fencing, 'RoleBinding');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata.name });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'hearth-fencing', namespace }]);
    expect(fencing.filter((o) => o.kind.startsWith('Cluster')).map((o) => o.kind)).toEqual([]);
    expectReadOnlyRbac(fencing);

    const fieldOf = (name: string): string | undefined => c.env?.find((e) => e.name === name)?.valueFrom?.fieldRef?.fieldPath;
    expect(fieldOf('HEARTH_FENCING_POD_NAME')).toBe('metadata.name');
    expect(fieldOf('HEARTH_FENCING_POD_UID')).toBe('metadata.uid');
    expect(fieldOf('HEARTH_FENCING_POD_NAMESPACE')).toBe('metadata.namespace');
    expect(fieldOf('HEARTH_FENCING_POD_NODE')).toBe('spec.nodeName');
    const known = new Set([...optionEntries.map((e) => e.env), 'HEARTH_CONFIG']);
    for (const e of c.env ?? []) if (e.name.startsWith('HEARTH_')) expect(known, e.name).toContain(e.name);
    expectNoSecretInEnv(c);

    const cfg = await podConfig(fencing, p, c);
    expect(cfg.fencing.method).toBe('kubernetes');
    expect(cfg.fencing.pod).toMatchObject({ name: 'hearth-0', namespace, node: 'node-a' });
    expect(cfg.fencing.pod.uid).not.toBe('');
    // The token, CA and namespace are where the kubelet mounts an automounted token; the API
    // server is the in-cluster one.
    expect(dirname(cfg.fencing.kubernetes.tokenFile)).toBe(SERVICE_ACCOUNT_DIR);
    expect(dirname(cfg.fencing.kubernetes.caFile)).toBe(SERVICE_ACCOUNT_DIR);
    expect(cfg.fencing.kubernetes.apiServer).toBe('');
    expect(volumeMountFor(c, undefined, SERVICE_ACCOUNT_DIR), 'nothing else mounted over the token').toBeUndefined();
  });

  it('lets the fence read nodes with fencing-kubernetes-nodes: get on nodes, nothing else', async () => {
    const withNodes = await renderWithComponent(overlay, 'fencing-kubernetes', 'fencing-kubernetes-nodes');
    const clusterRole = findOne(withNodes, 'ClusterRole');
    expect(clusterRole.rules).toEqual([{ apiGroups: [''], resources: ['nodes'], verbs: ['get'] }]);
    const binding = findOne(withNodes, 'ClusterRoleBinding');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole.metadata.name });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: findOne(withNodes, 'StatefulSet').spec!.template!.spec!.serviceAccountName, namespace }]);
    expect(findOne(withNodes, 'Role').rules).toEqual([{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }]);
    expectReadOnlyRbac(withNodes);
  });

  it('probes /livez (startup and liveness) and /readyz (readiness) on the ops port', () => {
    const opsPort = parseListen(config.ops.listen).port;
    const ports = new Map((container.ports ?? []).map((p) => [p.name, p.containerPort]));
    expect(ports.get('api')).toBe(parseListen(config.api.listen).port);
    for (const [probe, path] of [['startupProbe', '/livez'], ['livenessProbe', '/livez'], ['readinessProbe', '/readyz']] as const) {
      const get = container[probe]?.httpGet;
      expect(get?.path, probe).toBe(path);
      expect(typeof get?.port === 'string' ? ports.get(get.port) : get?.port, probe).toBe(opsPort);
    }
    const startup = container.startupProbe!;
    expect((startup.periodSeconds ?? 10) * (startup.failureThreshold ?? 3), 'startup budget (s)').toBeGreaterThanOrEqual(30);
  });

  it('allows more termination grace than the preStop sleep plus the drain', () => {
    const preStop = container.lifecycle?.preStop;
    const sleepS = preStop?.sleep?.seconds ?? Number(preStop?.exec?.command?.[1] ?? 0);
    const graceMs = (pod.terminationGracePeriodSeconds ?? 30) * 1000;
    expect(graceMs).toBeGreaterThan(sleepS * 1000 + config.shutdownGraceMs + 5_000);
  });

  it('runs with the restricted security context and a read-only root file system', () => {
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.securityContext?.runAsUser).not.toBe(0);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.hostNetwork ?? false).toBe(false);
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(container.securityContext?.privileged ?? false).toBe(false);
    const tmp = volumeMountFor(container, undefined, '/tmp');
    expect(pod.volumes?.find((v) => v.name === tmp?.name)?.emptyDir, '/tmp is an emptyDir').toBeDefined();
    // Everything hearth writes is on a mounted volume.
    for (const dir of [config.dataDir, config.driver.fileDir]) expect(volumeMountFor(container, undefined, dir), dir).toBeDefined();
  });

  it('shares one volume directory between all workers through a claim the overlay defines', () => {
    const mount = volumeMountFor(container, undefined, config.driver.fileDir)!;
    const claim = pod.volumes?.find((v) => v.name === mount.name)?.persistentVolumeClaim?.claimName;
    const pvc = findOne(objects, 'PersistentVolumeClaim', claim);
    expect(pvc.spec!.accessModes).toEqual(overlay === 'dev' ? ['ReadWriteOnce'] : ['ReadWriteMany']);
    expect(sts.spec!.volumeClaimTemplates ?? []).toEqual([]);
  });

  it('keeps at most one worker down at a time and lets unhealthy pods be evicted', () => {
    const pdb = findOne(objects, 'PodDisruptionBudget');
    expect(pdb.spec!.maxUnavailable).toBe(1);
    expect(pdb.spec!.unhealthyPodEvictionPolicy).toBe('AlwaysAllow');
    expect(sts.spec!.template!.metadata!.labels).toMatchObject(pdb.spec!.selector!.matchLabels!);
  });

  it('spreads workers over nodes and zones', () => {
    const spread = pod.topologySpreadConstraints ?? [];
    expect(spread.map((s) => s.topologyKey).sort()).toEqual(['kubernetes.io/hostname', 'topology.kubernetes.io/zone']);
    const byNode = spread.find((s) => s.topologyKey === 'kubernetes.io/hostname')!;
    expect(byNode.whenUnsatisfiable).toBe(overlay === 'prod' ? 'DoNotSchedule' : 'ScheduleAnyway');
    for (const s of spread) expect(sts.spec!.template!.metadata!.labels).toMatchObject(s.labelSelector!.matchLabels!);
  });

  it('pins a released image tag, never latest', () => {
    const image = container.image;
    const tag = /:([^/:@]+)$/.exec(image)?.[1];
    expect(tag, image).toBeDefined();
    expect(tag).not.toBe('latest');
    expect(tag).toBe((JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { version: string }).version);
  });

  it('adds ServiceMonitor, PrometheusRule and the dashboard with the monitoring component', async () => {
    const withMonitoring = await renderWithComponent(overlay);
    const monitor = findOne(withMonitoring, 'ServiceMonitor');
    expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(monitor.metadata.namespace).toBe(namespace);
    const scraped = withMonitoring.filter(
      (o) => o.kind === 'Service' && Object.entries(monitor.spec!.selector!.matchLabels!).every(([k, v]) => o.metadata.labels?.[k] === v),
    );
    // Exactly the headless Service: it lists unready pods, and no pod is scraped twice.
    expect(scraped.map((s) => s.metadata.name)).toEqual([sts.spec!.serviceName]);
    const endpoint = monitor.spec!.endpoints![0]!;
    expect(scraped[0]!.spec!.ports!.map((p) => p.name)).toContain(endpoint.port);
    expect(endpoint.path).toBe('/metrics');
    // The alerts match up{job="hearth"}: the job label comes from the Service's label.
    expect(scraped[0]!.metadata.labels?.[monitor.spec!.jobLabel!]).toBe('hearth');

    const rule = findOne(withMonitoring, 'PrometheusRule');
    expect(rule.apiVersion).toBe('monitoring.coreos.com/v1');
    const source = parse(readFileSync(repoPath('deploy/monitoring/alerts.yaml'), 'utf8')) as { groups: unknown };
    expect(rule.spec!.groups).toEqual(source.groups);

    const dashboard = withMonitoring.find((o) => o.kind === 'ConfigMap' && o.metadata.labels?.grafana_dashboard === '1');
    expect(dashboard?.metadata.namespace).toBe(namespace);
    expect(JSON.parse(dashboard!.data!['hearth.json']!)).toEqual(JSON.parse(readFileSync(repoPath('deploy/monitoring/dashboards/hearth.json'), 'utf8')));
  });
});

describe.skipIf(!kubectl)('Kubernetes examples', () => {
  it('run a 3-member etcd that the dev overlay points at', async () => {
    const etcd = await render(repoPath('deploy/kubernetes/examples/etcd'));
    const sts = findOne(etcd, 'StatefulSet');
    expect(sts.spec!.replicas).toBe(3);
    const svc = findOne(etcd, 'Service', sts.spec!.serviceName);
    expect(svc.spec!.clusterIP).toBe('None');
    const dev = await render(repoPath('deploy/kubernetes/overlays/dev'));
    const devConfig = parse(findOne(dev, 'ConfigMap').data!['config.yaml']!) as { etcd: { endpoints: string[] } };
    const members = Array.from({ length: 3 }, (_, i) => `http://${sts.metadata.name}-${i}.${svc.metadata.name}:2379`);
    expect(devConfig.etcd.endpoints).toEqual(members);
  });

  it('give hearth its own RabbitMQ vhost, user and permission through the operators', async () => {
    const objects = await render(repoPath('deploy/kubernetes/examples/rabbitmq'));
    expect(objects.map((o) => `${o.apiVersion}/${o.kind}`).sort()).toEqual(
      ['rabbitmq.com/v1beta1/Permission', 'rabbitmq.com/v1beta1/RabbitmqCluster', 'rabbitmq.com/v1beta1/User', 'rabbitmq.com/v1beta1/Vhost'],
    );
    const vhost = findOne(objects, 'Vhost');
    const permission = findOne(objects, 'Permission');
    expect(permission.spec!.vhost).toBe(vhost.spec!.name);
    expect(permission.spec!.userReference?.name).toBe(findOne(objects, 'User').metadata.name);
    const allowed = new RegExp(permission.spec!.permissions!.configure);
    for (const name of ['hearth', 'hearth.volume.demo@file']) expect(allowed.test(name), name).toBe(true);
    expect(allowed.test('other.queue')).toBe(false);
    const dev = await render(repoPath('deploy/kubernetes/overlays/dev'));
    const devConfig = parse(findOne(dev, 'ConfigMap').data!['config.yaml']!) as { amqp: { url: string; passwordFile: string } };
    const url = new URL(devConfig.amqp.url);
    expect(url.pathname).toBe(`/${vhost.spec!.name}`);
    // hearth mounts the password of the very Secret the Topology Operator's User imports, and
    // the URL names that user.
    const user = findOne(objects, 'User');
    const generated = findOne(dev, 'Secret', undefined, user.spec!.importCredentialsSecret!.name);
    expect(Buffer.from(generated.data!.username!, 'base64').toString()).toBe(url.username);
    const pod = findOne(dev, 'StatefulSet').spec!.template!.spec!;
    const mount = volumeMountFor(pod.containers[0]!, undefined, devConfig.amqp.passwordFile);
    expect(pod.volumes?.find((v) => v.name === mount?.name)?.secret?.secretName).toBe(generated.metadata.name);
  });
});
