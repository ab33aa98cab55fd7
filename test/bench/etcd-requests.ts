// etcd's own count of the requests it served, from its /metrics (gRPC's server counters): what
// the e2e suite divides by completed operations. Only unary KV calls are counted — the requests
// an operation makes; streams (watches, lease keepalives) are counted by etcd once per stream,
// not per message, and belong to a member, not to an operation.

/** The unary KV methods an operation's requests are made of. */
export const KV_METHODS = ['Range', 'Txn', 'Put', 'DeleteRange'] as const;
export type KvMethod = (typeof KV_METHODS)[number];

/** Requests served per method, as a counter snapshot. */
export type RequestCounts = Record<KvMethod, number>;

const LINE = /^grpc_server_handled_total\{([^}]*)\}\s+([0-9.e+]+)$/;

/** Parses etcd's /metrics text: `grpc_server_handled_total` of the KV service, summed over codes. */
export function parseRequestCounts(metrics: string): RequestCounts {
  const counts: RequestCounts = { Range: 0, Txn: 0, Put: 0, DeleteRange: 0 };
  for (const line of metrics.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const labels = m[1] as string;
    if (!labels.includes('grpc_service="etcdserverpb.KV"')) continue;
    const method = /grpc_method="([A-Za-z]+)"/.exec(labels)?.[1];
    if (method !== undefined && method in counts) counts[method as KvMethod] += Number(m[2]);
  }
  return counts;
}

/** Reads the counters of the member at `url` (its client URL serves /metrics). */
export async function etcdRequestCounts(url: string): Promise<RequestCounts> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`${url}/metrics: HTTP ${res.status}`);
  return parseRequestCounts(await res.text());
}

/** `after - before`, per method. */
export function requestsBetween(before: RequestCounts, after: RequestCounts): RequestCounts {
  return { Range: after.Range - before.Range, Txn: after.Txn - before.Txn, Put: after.Put - before.Put, DeleteRange: after.DeleteRange - before.DeleteRange };
}

/** The requests of a loaded window less those of an idle window of the same length (background: sweeps, heartbeats). */
export function netOfIdle(loaded: RequestCounts, idle: RequestCounts, loadedMs: number, idleMs: number): RequestCounts {
  const scale = idleMs <= 0 ? 0 : loadedMs / idleMs;
  const net = (m: KvMethod): number => Math.max(0, loaded[m] - idle[m] * scale);
  return { Range: net('Range'), Txn: net('Txn'), Put: net('Put'), DeleteRange: net('DeleteRange') };
}

export function totalRequests(counts: RequestCounts): number {
  return counts.Range + counts.Txn + counts.Put + counts.DeleteRange;
}
