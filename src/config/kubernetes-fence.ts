/**
 * What the `kubernetes` fence needs before hearth starts — an API server, a service-account
 * token, the CA that signed the API server's certificate, a namespace, and the pod this process
 * runs in — and the readers the fence itself uses on every attempt, so that a file the start
 * refuses the fence refuses too. Problems name the option and never quote a token.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ConfigIssue } from '../errors.js';
import { inClusterApiServer } from './environment.js';
import { redactUrl } from './redact.js';
import type { Config } from './schema.js';
import { errnoOf } from './secret-file.js';

/** A file read for the fence: its value, or what is wrong with it (never its contents). */
export type KubernetesRead<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

/** Larger token files are refused: a projected token is a JWT of a few kilobytes. */
export const MAX_KUBERNETES_TOKEN_BYTES = 65_536;
/** Larger CA files are refused: a CA bundle of a few certificates is a few kilobytes. */
const MAX_CA_BYTES = 1_048_576;
/** A namespace is a DNS label (RFC 1123). */
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** The namespace file Kubernetes mounts beside a service-account token. */
export function namespaceFileOf(tokenFile: string): string {
  return join(dirname(tokenFile), 'namespace');
}

/**
 * The bearer token in a token file's contents: surrounding whitespace (the trailing newline) is
 * ignored; the rest must be printable ASCII without spaces, as a JWT is.
 */
export function parseBearerToken(contents: Buffer): KubernetesRead<string> {
  if (contents.length > MAX_KUBERNETES_TOKEN_BYTES) return { ok: false, problem: `is larger than ${MAX_KUBERNETES_TOKEN_BYTES} bytes; is it the right file?` };
  const token = contents.toString('utf8').trim();
  if (token === '') return { ok: false, problem: 'is empty' };
  if (!/^[\x21-\x7e]+$/.test(token)) return { ok: false, problem: 'must hold one token of printable ASCII characters with no spaces' };
  return { ok: true, value: token };
}

/** Reads the service-account token in `path` (again on every attempt: projected tokens rotate). */
export async function readKubernetesToken(path: string): Promise<KubernetesRead<string>> {
  const contents = await readSmall(path);
  return contents.ok ? parseBearerToken(contents.value) : contents;
}

/** Reads the CA file in `path`; it must hold at least one PEM certificate. */
export async function readKubernetesCa(path: string): Promise<KubernetesRead<Buffer>> {
  const contents = await readSmall(path, MAX_CA_BYTES);
  if (!contents.ok) return contents;
  if (!contents.value.includes('-----BEGIN CERTIFICATE-----')) return { ok: false, problem: 'holds no PEM certificate' };
  try {
    new X509Certificate(contents.value);
  } catch {
    return { ok: false, problem: 'holds no certificate that can be parsed' };
  }
  return contents;
}

/** Reads the namespace in `path` (the service account's namespace file). */
export async function readKubernetesNamespace(path: string): Promise<KubernetesRead<string>> {
  const contents = await readSmall(path, 256);
  if (!contents.ok) return contents;
  const namespace = contents.value.toString('utf8').trim();
  return NAMESPACE.test(namespace) ? { ok: true, value: namespace } : { ok: false, problem: 'does not hold a namespace name' };
}

async function readSmall(path: string, maxBytes = MAX_KUBERNETES_TOKEN_BYTES): Promise<KubernetesRead<Buffer>> {
  try {
    const contents = await readFile(path);
    if (contents.length > maxBytes) return { ok: false, problem: `is larger than ${maxBytes} bytes; is it the right file?` };
    return { ok: true, value: contents };
  } catch (err) {
    return { ok: false, problem: `cannot be read (${errnoOf(err)})` };
  }
}

const OPTION = {
  apiServer: { path: 'fencing.kubernetes.apiServer', env: 'HEARTH_FENCING_KUBERNETES_API_SERVER' },
  tokenFile: { path: 'fencing.kubernetes.tokenFile', env: 'HEARTH_FENCING_KUBERNETES_TOKEN_FILE' },
  caFile: { path: 'fencing.kubernetes.caFile', env: 'HEARTH_FENCING_KUBERNETES_CA_FILE' },
  namespace: { path: 'fencing.kubernetes.namespace', env: 'HEARTH_FENCING_KUBERNETES_NAMESPACE' },
  podName: { path: 'fencing.pod.name', env: 'HEARTH_FENCING_POD_NAME' },
  podUid: { path: 'fencing.pod.uid', env: 'HEARTH_FENCING_POD_UID' },
} as const;

/**
 * Rules on the options alone (run with the other cross-field rules): with `fencing.method
 * kubernetes` the API server is an https URL (the fence sends a bearer token), the token and CA
 * files are named, and this process knows its own pod — without it, no one could ever fence it.
 */
export function kubernetesFenceRules(fencing: Config['fencing']): ConfigIssue[] {
  if (fencing.method !== 'kubernetes') return [];
  const issues: ConfigIssue[] = [];
  const k8s = fencing.kubernetes;
  if (k8s.apiServer !== '' && !isHttpsOrigin(k8s.apiServer)) {
    issues.push({ ...OPTION.apiServer, message: `must be an https:// URL of the API server with no user, path or query (the fence sends a bearer token), got ${JSON.stringify(redactUrl(k8s.apiServer).slice(0, 200))}` });
  }
  if (k8s.tokenFile === '') issues.push({ ...OPTION.tokenFile, message: 'fencing.method kubernetes needs the service-account token file' });
  if (k8s.caFile === '') issues.push({ ...OPTION.caFile, message: "fencing.method kubernetes needs the CA file of the API server's certificate" });
  const unrecorded = (field: string): string =>
    `fencing.method kubernetes needs this process's pod recorded, so that the others can fence it: set it from the Downward API (${field})`;
  if (fencing.pod.name === '') issues.push({ ...OPTION.podName, message: unrecorded('metadata.name') });
  if (fencing.pod.uid === '') issues.push({ ...OPTION.podUid, message: unrecorded('metadata.uid') });
  return issues;
}

/**
 * Checks against this machine (with the file checks of `secretFiles: 'check'`): the token and CA
 * files are readable and hold what they should, an API server is known (configured, or the
 * in-cluster address from `env`), and the namespace file is readable when no namespace is set.
 */
export async function kubernetesFenceFileIssues(fencing: Config['fencing'], env: Readonly<Record<string, string | undefined>>): Promise<ConfigIssue[]> {
  if (fencing.method !== 'kubernetes') return [];
  const issues: ConfigIssue[] = [];
  const k8s = fencing.kubernetes;
  if (k8s.apiServer === '' && inClusterApiServer(env) === undefined) {
    issues.push({ ...OPTION.apiServer, message: 'fencing.method kubernetes needs the API server: set it, or run in a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set)' });
  }
  const hint = '; mount a service-account token (deploy/kubernetes/components/fencing-kubernetes)';
  if (k8s.tokenFile !== '') {
    const token = await readKubernetesToken(k8s.tokenFile);
    if (!token.ok) issues.push({ ...OPTION.tokenFile, message: `${k8s.tokenFile} ${token.problem}${hint}` });
  }
  if (k8s.caFile !== '') {
    const ca = await readKubernetesCa(k8s.caFile);
    if (!ca.ok) issues.push({ ...OPTION.caFile, message: `${k8s.caFile} ${ca.problem}${hint}` });
  }
  if (k8s.namespace === '' && k8s.tokenFile !== '') {
    const file = namespaceFileOf(k8s.tokenFile);
    const namespace = await readKubernetesNamespace(file);
    if (!namespace.ok) issues.push({ ...OPTION.namespace, message: `is empty, so it is read from ${file}, which ${namespace.problem}: set the namespace of hearth's pods` });
  }
  return issues;
}

function isHttpsOrigin(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' && url.username === '' && url.password === '' && (url.pathname === '/' || url.pathname === '') && url.search === '' && url.hash === '';
  } catch {
    return false;
  }
}
