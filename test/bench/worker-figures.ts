// What each worker of a cluster run did, from its own /metrics: operations finished, their mean
// duration (claim to final transition) and the mean duration of its state-store writes. The
// scaleout suite reports them beside the throughput, so a run shows what limited it: work spread
// unevenly over the workers, or each operation holding its slot longer than the driver's call.

/** Counter sums of one worker at one moment. */
export interface WorkerSnapshot {
  readonly ops: number;
  readonly opSeconds: number;
  readonly writes: number;
  readonly writeSeconds: number;
}

/** Sums every series of `name` (a counter, or a histogram's `_sum` / `_count`) in a /metrics text. */
function sumOf(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Reads the counters of the workers whose ops listeners are `opsUrls`. */
export async function workerSnapshots(opsUrls: readonly string[]): Promise<WorkerSnapshot[]> {
  return Promise.all(
    opsUrls.map(async (url) => {
      const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) });
      if (!res.ok) throw new Error(`${url}/metrics: HTTP ${res.status}`);
      const text = await res.text();
      return {
        ops: sumOf(text, 'hearth_operations_total'),
        opSeconds: sumOf(text, 'hearth_operation_duration_seconds_sum'),
        writes: sumOf(text, 'hearth_transition_duration_seconds_count'),
        writeSeconds: sumOf(text, 'hearth_transition_duration_seconds_sum'),
      };
    }),
  );
}

/** What the workers did between two snapshots. */
export interface WorkerFigures {
  /** Operations each worker finished. */
  readonly opsPerWorker: number[];
  /** The busiest worker's operations against an even share (1 = perfectly even). */
  readonly busiestShare: number;
  /** Mean duration of an operation, claim to final transition (ms). */
  readonly opMeanMs: number;
  /** Mean duration of a state-store write (ms): the claim and the final write each are one. */
  readonly writeMeanMs: number;
}

export function workerFigures(before: readonly WorkerSnapshot[], after: readonly WorkerSnapshot[]): WorkerFigures {
  const delta = after.map((a, i) => {
    const b = before[i] as WorkerSnapshot;
    return { ops: a.ops - b.ops, opSeconds: a.opSeconds - b.opSeconds, writes: a.writes - b.writes, writeSeconds: a.writeSeconds - b.writeSeconds };
  });
  const total = delta.reduce((n, d) => n + d.ops, 0);
  const sum = (pick: (d: (typeof delta)[number]) => number): number => delta.reduce((n, d) => n + pick(d), 0);
  return {
    opsPerWorker: delta.map((d) => d.ops),
    busiestShare: total === 0 ? 0 : Math.max(...delta.map((d) => d.ops)) / (total / delta.length),
    opMeanMs: total === 0 ? 0 : (sum((d) => d.opSeconds) / total) * 1_000,
    writeMeanMs: sum((d) => d.writes) === 0 ? 0 : (sum((d) => d.writeSeconds) / sum((d) => d.writes)) * 1_000,
  };
}
