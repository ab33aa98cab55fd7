import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';

/** One request the fake API server saw. */
export interface KubeRequest {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
}

/** How the fake answers one path: a status and JSON body, or never (the request hangs). */
export type KubeReply = { readonly status: number; readonly body: unknown } | 'hang';

/** A Kubernetes API server stand-in over HTTPS on 127.0.0.1 that records every request. */
export interface FakeKubeApi {
  /** `https://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** Every request, in order, whatever its method. */
  readonly requests: KubeRequest[];
  /** Bearer tokens it accepts; any other (or none) gets 401. */
  readonly tokens: Set<string>;
  /** Answers `path` with `reply` from now on. Paths with no reply get the API server's 404 Status. */
  reply(path: string, reply: KubeReply): void;
  /** Forgets every reply. */
  reset(): void;
  close(): Promise<void>;
}

/** A `v1` Status object, as the API server sends with an error status. */
export function kubeStatus(code: number, reason: string, message: string): { status: number; body: unknown } {
  return { status: code, body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code } };
}

/** A minimal Pod object. */
export function kubePod(
  name: string,
  namespace: string,
  uid: string,
  fields: { node?: string; deletionTimestamp?: string; phase?: string; containerStatuses?: readonly Record<string, unknown>[] } = {},
): { status: number; body: unknown } {
  return {
    status: 200,
    body: {
      kind: 'Pod',
      apiVersion: 'v1',
      metadata: { name, namespace, uid, ...(fields.deletionTimestamp ? { deletionTimestamp: fields.deletionTimestamp, deletionGracePeriodSeconds: 60 } : {}) },
      spec: { nodeName: fields.node ?? 'node-a', containers: [{ name: 'hearth', image: 'hearth:0.1.0' }] },
      status: { phase: fields.phase ?? 'Running', ...(fields.containerStatuses ? { containerStatuses: fields.containerStatuses } : {}) },
    },
  };
}

/** A minimal Node object with the given taints. */
export function kubeNode(name: string, taints: readonly { key: string; value?: string; effect: string }[] = []): { status: number; body: unknown } {
  return { status: 200, body: { kind: 'Node', apiVersion: 'v1', metadata: { name, uid: `node-uid-${name}` }, spec: { taints: [...taints] }, status: {} } };
}

/** Starts the fake with a server certificate (`cert`, `key`: PEM files) valid for 127.0.0.1. */
export async function startFakeKubeApi(tls: { readonly cert: string; readonly key: string }): Promise<FakeKubeApi> {
  const replies = new Map<string, KubeReply>();
  const requests: KubeRequest[] = [];
  const tokens = new Set<string>();
  const server: Server = createServer({ cert: await readFile(tls.cert), key: await readFile(tls.key) }, (req, res) => {
    const path = req.url ?? '';
    const authorization = req.headers.authorization;
    requests.push({ method: req.method ?? '', path, authorization });
    req.resume();
    const send = (reply: { status: number; body: unknown }): void => {
      res.writeHead(reply.status, { 'content-type': 'application/json' }).end(JSON.stringify(reply.body));
    };
    const token = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
    if (token === undefined || !tokens.has(token)) return send(kubeStatus(401, 'Unauthorized', 'Unauthorized'));
    const reply = replies.get(path);
    if (reply === 'hang') return;
    send(reply ?? kubeStatus(404, 'NotFound', `${path} not found`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    requests,
    tokens,
    reply: (path, reply) => void replies.set(path, reply),
    reset: () => replies.clear(),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
