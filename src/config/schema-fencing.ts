// The `fencing.*` options (docs/fencing.md): how an incarnation that ended without a clean leave
// is fenced before anyone takes over its work. Part of the configuration tree in schema.ts.
import { opt, type SpecTree } from './option.js';

/** The `fencing` section of {@link configSpec}. */
export const fencingSpec = {
  method: opt.enum(['none', 'exec', 'kubernetes'] as const, {
    default: 'none',
    doc: 'How an incarnation that ended without a clean leave is fenced before anyone takes over its work or its locks: none (only a lock-delay: fencing.lockDelayMs after its death), exec (fencing.exec.command must succeed), or kubernetes (the API server confirms its pod is gone). A later incarnation of the same process fences its earlier one itself, and a process on this machine that is gone needs nothing more, whatever the method.',
  }),
  lockDelayMs: opt.int({
    default: 0,
    min: 0,
    unit: 'ms',
    doc: 'With fencing.method none: how long after a death its work and locks stay untouched (0: leaseTtlMs). At least leaseTtlMs. It cannot protect against a process frozen for longer than this.',
  }),
  selfFenceGraceMs: opt.int({
    default: 15_000,
    min: 0,
    unit: 'ms',
    doc: 'A death this member did not see happen live (it was cut off itself, as in an etcd quorum loss) is fenced from outside only this long after it, so a process that lives on can fence its earlier incarnation itself first.',
  }),
  retryMaxDelayMs: opt.int({
    default: 30_000,
    min: 100,
    unit: 'ms',
    doc: 'Longest wait between two attempts of a fence that failed (the wait doubles from 1 s).',
  }),
  recordRetentionMs: opt.int({
    default: 86_400_000,
    min: 60_000,
    unit: 'ms',
    doc: 'How long the record of a fenced or cleanly ended incarnation is kept once no operation refers to it (etcd history and the operator view show it until then).',
  }),
  exec: {
    command: opt.string({
      default: '',
      doc: 'fencing.method exec: the command run to fence an incarnation (an absolute path, or a name on PATH; no shell). It gets the incarnation, host, process id and start time, boot id and addresses in HEARTH_FENCE_* environment variables; exit status 0 means fenced.',
    }),
    args: opt.list({ default: [], doc: 'Arguments passed to fencing.exec.command (comma-separated).' }),
    timeoutMs: opt.int({ default: 30_000, min: 100, unit: 'ms', doc: 'A fence command still running after this long is killed and counts as failed.' }),
  },
  kubernetes: {
    apiServer: opt.string({
      default: '',
      doc: 'fencing.method kubernetes: the API server URL. Empty: the in-cluster address (https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT).',
    }),
    tokenFile: opt.string({
      default: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      doc: 'fencing.method kubernetes: the service-account token file (re-read on every request).',
    }),
    caFile: opt.string({
      default: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
      doc: 'fencing.method kubernetes: the CA file of the API server.',
    }),
    namespace: opt.string({
      default: '',
      doc: "fencing.method kubernetes: the namespace of hearth's pods. Empty: the service account's namespace file beside the token.",
    }),
  },
  pod: {
    name: opt.string({ default: '', doc: "This process's pod name (Downward API metadata.name), recorded so a Kubernetes fence can find it. Empty outside Kubernetes." }),
    uid: opt.string({ default: '', doc: "This process's pod UID (Downward API metadata.uid)." }),
    namespace: opt.string({ default: '', doc: "This process's pod namespace (Downward API metadata.namespace)." }),
    node: opt.string({ default: '', doc: "The node this pod runs on (Downward API spec.nodeName)." }),
    container: opt.string({
      default: 'hearth',
      doc: "The name of hearth's container in its pod: a kubernetes fence also counts a process as stopped once this container restarted after it started (a crash, an OOM kill, a failed liveness probe).",
    }),
  },
} satisfies SpecTree;
