import { expect } from 'vitest';

/** The few Kubernetes fields the deploy checks read (rendered by kustomize, parsed as YAML). */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  automountServiceAccountToken?: boolean;
  rules?: { apiGroups?: string[]; resources?: string[]; resourceNames?: string[]; verbs: string[] }[];
  roleRef?: { apiGroup: string; kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec?: {
    replicas?: number;
    serviceName?: string;
    podManagementPolicy?: string;
    updateStrategy?: { type?: string; rollingUpdate?: { partition?: number } };
    minReadySeconds?: number;
    selector?: Record<string, string> & { matchLabels?: Record<string, string> };
    template?: { metadata?: { labels?: Record<string, string> }; spec?: PodSpec };
    volumeClaimTemplates?: unknown[];
    clusterIP?: string;
    publishNotReadyAddresses?: boolean;
    ports?: { name?: string; port: number }[];
    accessModes?: string[];
    maxUnavailable?: number | string;
    unhealthyPodEvictionPolicy?: string;
    jobLabel?: string;
    endpoints?: { port?: string; path?: string }[];
    groups?: unknown;
    name?: string;
    vhost?: string;
    userReference?: { name: string };
    importCredentialsSecret?: { name: string };
    permissions?: { configure: string; write: string; read: string };
  };
}

interface Probe {
  httpGet?: { path: string; port: number | string };
  periodSeconds?: number;
  failureThreshold?: number;
}

export interface Container {
  name: string;
  image: string;
  env?: {
    name: string;
    value?: string;
    valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string; optional?: boolean } };
  }[];
  envFrom?: { secretRef?: { name: string }; configMapRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number }[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command?: string[] }; sleep?: { seconds: number } } };
  securityContext?: Record<string, unknown> & { privileged?: boolean };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
}

export interface PodSpec {
  containers: Container[];
  serviceAccountName?: string;
  enableServiceLinks?: boolean;
  automountServiceAccountToken?: boolean;
  hostNetwork?: boolean;
  terminationGracePeriodSeconds?: number;
  securityContext?: Record<string, unknown> & { runAsUser?: number };
  topologySpreadConstraints?: { topologyKey: string; whenUnsatisfiable: string; labelSelector?: { matchLabels?: Record<string, string> } }[];
  volumes?: {
    name: string;
    configMap?: { name: string };
    secret?: { secretName: string; defaultMode?: number; optional?: boolean; items?: { key: string; path: string }[] };
    emptyDir?: Record<string, unknown>;
    persistentVolumeClaim?: { claimName: string };
  }[];
}

/**
 * The one object of a kind, optionally by exact name or by the name a kustomize generator
 * gave it (`<base>-<hash>`).
 */
export function findOne(objects: readonly K8sObject[], kind: string, name?: string, generatedFrom?: string): K8sObject {
  const found = objects.filter(
    (o) =>
      o.kind === kind &&
      (name === undefined || o.metadata.name === name) &&
      (generatedFrom === undefined || new RegExp(`^${generatedFrom}-[a-z0-9]{10}$`).test(o.metadata.name)),
  );
  expect(found.map((o) => o.metadata.name), `one ${kind}${name ? ` ${name}` : ''}`).toHaveLength(1);
  return found[0]!;
}

/** The mount of a volume by name, or the mount a path lies on. */
export function volumeMountFor(container: Container, volume?: string, path?: string): NonNullable<Container['volumeMounts']>[number] | undefined {
  return (container.volumeMounts ?? []).find(
    (m) => (volume === undefined || m.name === volume) && (path === undefined || path === m.mountPath || path.startsWith(`${m.mountPath}/`)),
  );
}

/** Stand-ins for Secrets the deployer creates; generated Secrets are read from the render. */
const PLACEHOLDERS: Record<string, string> = {
  url: 'amqps://hearth:placeholder-password@rabbitmq:5671/hearth',
  username: 'hearth',
  password: 'placeholder-password',
};

/** What the Downward API knows of a pod. */
export interface PodFacts {
  readonly podName: string;
  readonly uid?: string;
  readonly namespace?: string;
  readonly nodeName?: string;
}

/** The container's environment as the kubelet would set it for pod `podName`. */
export function envFromSpec(container: Container, objects: readonly K8sObject[], pod: PodFacts): Record<string, string> {
  const fields: Record<string, string> = {
    'metadata.name': pod.podName,
    'metadata.uid': pod.uid ?? '3f6d2c1a-0b4e-4f5a-9c8d-7e6f5a4b3c2d',
    'metadata.namespace': pod.namespace ?? 'default',
    'spec.nodeName': pod.nodeName ?? 'node-a',
  };
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    const fieldPath = e.valueFrom?.fieldRef?.fieldPath;
    if (e.value !== undefined) {
      env[e.name] = e.value;
    } else if (fieldPath !== undefined && fields[fieldPath] !== undefined) {
      env[e.name] = fields[fieldPath];
    } else if (e.valueFrom?.secretKeyRef) {
      const ref = e.valueFrom.secretKeyRef;
      const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === ref.name);
      const encoded = secret?.data?.[ref.key];
      const value = encoded !== undefined ? Buffer.from(encoded, 'base64').toString() : PLACEHOLDERS[ref.key];
      expect(value, `${e.name} from Secret ${ref.name} key ${ref.key}`).toBeDefined();
      env[e.name] = value!;
    } else {
      throw new Error(`unexpected env source for ${e.name}`);
    }
  }
  return env;
}
