/**
 * The `kubernetes` fence: a dead incarnation's process is fenced once the API server shows its
 * pod can run no more — the pod object is gone (graceful deletion finished: the kubelet saw its
 * containers stop, or someone force-deleted it), or its node carries the
 * `node.kubernetes.io/out-of-service` taint, an operator's statement that the node is down.
 *
 * hearth only reads (pods, and nodes when allowed): it never deletes, evicts or taints, so it
 * never declares a node dead on its own. A pod that is running, or still terminating, is not
 * fenced, whatever its phase says, for its containers may still be at work.
 */
import { inClusterApiServer } from '../config/environment.js';
import { namespaceFileOf, readKubernetesCa, readKubernetesNamespace, readKubernetesToken } from '../config/kubernetes-fence.js';
import type { Config } from '../config/schema.js';
import { ConfigError, messageOf } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { type ApiAnswer, apiGet } from './kubernetes-api.js';
import type { FenceMethod, FenceOutcome, FenceTarget } from './method.js';

/** The taint an operator (or a node-lifecycle tool) puts on a node it knows is shut down. */
export const OUT_OF_SERVICE_TAINT = 'node.kubernetes.io/out-of-service';

/** How long to wait before asking again about a pod whose graceful deletion is under way. */
export const TERMINATING_RETRY_MS = 2_000;

/** Options of {@link KubernetesFence} that are not configuration. */
export interface KubernetesFenceOptions {
  /** Longest wait for one answer of the API server (default 10 s); the attempt's signal bounds it too. */
  readonly requestTimeoutMs?: number;
}

/** The little of a pod the fence reads. */
interface PodView {
  readonly uid: string;
  readonly deletionTimestamp: string | undefined;
  readonly nodeName: string;
  readonly phase: string;
}

type Credentials = { readonly token: string; readonly ca: Buffer };

/** The `kubernetes` {@link FenceMethod}; see the module comment for when it reports fenced. */
export class KubernetesFence implements FenceMethod {
  readonly name = 'kubernetes' as const;
  readonly #config: Config['fencing']['kubernetes'];
  readonly #server: URL;
  readonly #logger: Logger;
  readonly #timeoutMs: number;

  /**
   * @param config `fencing.kubernetes`; an empty `apiServer` means the in-cluster address.
   * @throws ConfigError when no API server is known, or it is not an https URL (the start-up
   *   check reports both first).
   */
  constructor(config: Config['fencing']['kubernetes'], logger: Logger, options: KubernetesFenceOptions = {}) {
    this.#config = config;
    this.#logger = logger.child({ fence: 'kubernetes' });
    this.#timeoutMs = options.requestTimeoutMs ?? 10_000;
    const server = config.apiServer !== '' ? config.apiServer : inClusterApiServer();
    const issue = { path: 'fencing.kubernetes.apiServer', env: 'HEARTH_FENCING_KUBERNETES_API_SERVER' };
    if (server === undefined) throw new ConfigError([{ ...issue, message: 'not set, and this process does not run in a Kubernetes pod' }]);
    let url: URL | undefined;
    try {
      url = new URL(server);
    } catch {
      url = undefined;
    }
    if (url?.protocol !== 'https:') throw new ConfigError([{ ...issue, message: 'must be an https:// URL' }]);
    this.#server = new URL(url.origin);
  }

  /** One read-only look at the target's pod (and its node); never throws. */
  async fence(target: FenceTarget, signal: AbortSignal): Promise<FenceOutcome> {
    try {
      return await this.#attempt(target, signal);
    } catch (err) {
      // Not expected (every read returns its failure as a value), but a fence must not throw.
      this.#logger.warn({ err, incarnation: target.incarnation }, 'kubernetes fence attempt failed unexpectedly');
      return notFenced(`the attempt failed: ${messageOf(err).slice(0, 200)}`);
    }
  }

  async #attempt(target: FenceTarget, signal: AbortSignal): Promise<FenceOutcome> {
    const pod = target.process?.pod;
    if (pod === undefined) return notFenced(`no pod recorded for ${target.incarnation}`);
    if (signal.aborted) return notFenced('aborted');
    const credentials = await this.#credentials();
    if ('reason' in credentials) return notFenced(credentials.reason);
    let namespace = pod.namespace;
    if (namespace === '') {
      const found = await this.#namespace();
      if ('reason' in found) return notFenced(found.reason);
      namespace = found.namespace;
    }
    const podRef = `pod ${namespace}/${pod.name}`;
    const answer = await this.#get(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod.name)}`, credentials, signal);
    this.#logger.debug({ incarnation: target.incarnation, pod: `${namespace}/${pod.name}`, answer: summary(answer) }, 'read the pod of a dead incarnation');
    if (answer.kind === 'failed') return notFenced(`cannot read ${podRef}: ${answer.reason}`);
    if (answer.status === 404) return { fenced: true, detail: `${podRef} is gone (the API server answers 404)` };
    if (answer.status !== 200) return notFenced(`cannot read ${podRef}: ${refusal(answer, `pods in namespace ${namespace}`)}`);
    const seen = podView(answer.body);
    if (seen === undefined) return notFenced(`cannot read ${podRef}: the answer is not a pod`);
    if (pod.uid !== '' && seen.uid !== pod.uid) {
      return { fenced: true, detail: `${podRef} (uid ${pod.uid}) is gone: the name now belongs to a new pod (uid ${seen.uid})` };
    }
    const which = pod.uid === '' ? `${podRef} (no uid recorded, so it may be the same pod)` : `${podRef} (uid ${pod.uid})`;
    const restarted = pod.uid !== '' ? containerEnded(answer.body, pod.container ?? '', target.process?.startedAtMs) : undefined;
    if (restarted !== undefined) return { fenced: true, detail: `${which}: ${restarted}` };
    const node = pod.node !== '' ? pod.node : seen.nodeName;
    const nodeLook = node === '' ? { note: 'no node known' } : await this.#nodeLook(node, credentials, signal);
    if ('taint' in nodeLook) return { fenced: true, detail: `node ${node} carries the taint ${nodeLook.taint} (it is out of service); ${which} ran there` };
    if (seen.deletionTimestamp !== undefined) {
      const reason = `${which} is being deleted (since ${seen.deletionTimestamp}) but still exists: its containers may still run; ${nodeLook.note}`;
      // A failure, though often a short one: a deletion stuck on a node that does not answer must alert.
      return notFenced(reason, TERMINATING_RETRY_MS);
    }
    return notFenced(`${which} still exists on node ${node || '(none)'} (phase ${seen.phase || 'unknown'}); ${nodeLook.note}`);
  }

  /** Whether `node` carries the out-of-service taint, or a note on what was seen instead. */
  async #nodeLook(node: string, credentials: Credentials, signal: AbortSignal): Promise<{ readonly taint: string } | { readonly note: string }> {
    const answer = await this.#get(`/api/v1/nodes/${encodeURIComponent(node)}`, credentials, signal);
    this.#logger.debug({ node, answer: summary(answer) }, 'read the node of a dead incarnation');
    if (answer.kind === 'failed') return { note: `cannot read node ${node}: ${answer.reason}` };
    if (answer.status === 403) {
      return { note: `hearth may not read nodes (403), so an ${OUT_OF_SERVICE_TAINT} taint on ${node} cannot be seen (grant the optional node reader, components/fencing-kubernetes-nodes)` };
    }
    if (answer.status !== 200) return { note: `cannot read node ${node}: ${refusal(answer, 'nodes')}` };
    const taint = outOfServiceTaint(answer.body);
    return taint !== undefined ? { taint } : { note: `node ${node} has no ${OUT_OF_SERVICE_TAINT} taint` };
  }

  async #credentials(): Promise<Credentials | { readonly reason: string }> {
    const { tokenFile, caFile } = this.#config;
    const token = await readKubernetesToken(tokenFile);
    if (!token.ok) return { reason: `fencing.kubernetes.tokenFile ${tokenFile} ${token.problem}` };
    const ca = await readKubernetesCa(caFile);
    if (!ca.ok) return { reason: `fencing.kubernetes.caFile ${caFile} ${ca.problem}` };
    return { token: token.value, ca: ca.value };
  }

  async #namespace(): Promise<{ readonly namespace: string } | { readonly reason: string }> {
    if (this.#config.namespace !== '') return { namespace: this.#config.namespace };
    const file = namespaceFileOf(this.#config.tokenFile);
    const read = await readKubernetesNamespace(file);
    return read.ok ? { namespace: read.value } : { reason: `the pod's namespace is not recorded and ${file} ${read.problem}` };
  }

  #get(path: string, credentials: Credentials, signal: AbortSignal): Promise<ApiAnswer> {
    return apiGet({ server: this.#server, path, token: credentials.token, ca: credentials.ca, timeoutMs: this.#timeoutMs, signal });
  }
}

function notFenced(reason: string, retryAfterMs?: number): FenceOutcome {
  return retryAfterMs === undefined ? { fenced: false, reason } : { fenced: false, reason, retryAfterMs };
}

/** Why a read was refused, from the status and the message of the API server's Status object. */
function refusal(answer: { readonly status: number; readonly body: unknown }, what: string): string {
  const message = stringAt(answer.body, 'message');
  const said = message === '' ? '' : `: ${message.slice(0, 300)}`;
  if (answer.status === 401) return `the API server does not accept the token (401)${said}`;
  if (answer.status === 403) return `hearth may not read ${what} (403; the Role of components/fencing-kubernetes grants it)${said}`;
  return `the API server answers ${answer.status}${said}`;
}

function podView(body: unknown): PodView | undefined {
  const uid = stringAt(body, 'metadata', 'uid');
  if (stringAt(body, 'kind') !== 'Pod' || uid === '') return undefined;
  const deletion = stringAt(body, 'metadata', 'deletionTimestamp');
  return { uid, deletionTimestamp: deletion === '' ? undefined : deletion, nodeName: stringAt(body, 'spec', 'nodeName'), phase: stringAt(body, 'status', 'phase') };
}

/**
 * Whether the instance of `container` in which a process started at `processStartedAtMs` is
 * over, from the pod's container status (the kubelet's word): the container restarted since
 * (a crash, an OOM kill, a failed liveness probe: the pod keeps its name and uid), or it is
 * terminated. Says why, or undefined when it may still run (or nothing tells).
 */
function containerEnded(body: unknown, container: string, processStartedAtMs: number | undefined): string | undefined {
  if (container === '' || processStartedAtMs === undefined) return undefined;
  const statuses = valueAt(body, 'status', 'containerStatuses');
  const status = Array.isArray(statuses) ? (statuses as unknown[]).find((s) => stringAt(s, 'name') === container) : undefined;
  if (status === undefined) return undefined;
  const restarts = valueAt(status, 'restartCount');
  const count = typeof restarts === 'number' ? ` (restart count ${restarts})` : '';
  // Container times have whole seconds: a later instance starts after the process did, so after its second too.
  const running = Date.parse(stringAt(status, 'state', 'running', 'startedAt'));
  if (running > processStartedAtMs) return `container ${container} restarted at ${stringAt(status, 'state', 'running', 'startedAt')}, after the process started${count}`;
  if (valueAt(status, 'state', 'terminated') !== undefined) {
    return `container ${container} has terminated (${stringAt(status, 'state', 'terminated', 'reason') || 'no reason given'})${count}`;
  }
  const lastFinished = Date.parse(stringAt(status, 'lastState', 'terminated', 'finishedAt'));
  if (valueAt(status, 'state', 'waiting') !== undefined && lastFinished > processStartedAtMs) {
    return `container ${container} terminated at ${stringAt(status, 'lastState', 'terminated', 'finishedAt')} and waits to restart${count}`;
  }
  return undefined;
}

/** The out-of-service taint of a Node object, as `key[=value]:effect`, if it carries one. */
function outOfServiceTaint(body: unknown): string | undefined {
  const taints = valueAt(body, 'spec', 'taints');
  if (!Array.isArray(taints)) return undefined;
  for (const taint of taints) {
    if (stringAt(taint, 'key') !== OUT_OF_SERVICE_TAINT) continue;
    const value = stringAt(taint, 'value');
    return `${OUT_OF_SERVICE_TAINT}${value === '' ? '' : `=${value}`}:${stringAt(taint, 'effect') || '(no effect)'}`;
  }
  return undefined;
}

function summary(answer: ApiAnswer): string {
  return answer.kind === 'answer' ? `HTTP ${answer.status}` : answer.reason;
}

function valueAt(value: unknown, ...keys: readonly string[]): unknown {
  let node = value;
  for (const key of keys) {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

function stringAt(value: unknown, ...keys: readonly string[]): string {
  const found = valueAt(value, ...keys);
  return typeof found === 'string' ? found : '';
}
