// CPU time of processes and their descendants from /proc (Linux): what the e2e suite divides
// by completed operations, per process (API, worker, etcd, RabbitMQ), so the cost of an
// operation shows independently of how busy the shared machine was.
import { readdir, readFile } from 'node:fs/promises';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on Linux). */
const TICKS_PER_S = 100;

interface Stat {
  readonly pid: number;
  readonly ppid: number;
  /** utime + stime, in ms. */
  readonly cpuMs: number;
}

async function stat(pid: number): Promise<Stat | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { pid, ppid: Number(fields[1]), cpuMs: (ticks * 1_000) / TICKS_PER_S };
  } catch {
    return undefined;
  }
}

/** CPU ms used so far by each root process and its live descendants, by name. */
export async function cpuMsOf(roots: Readonly<Record<string, number>>): Promise<Record<string, number>> {
  const stats = (await Promise.all((await readdir('/proc')).filter((d) => /^\d+$/.test(d)).map((d) => stat(Number(d))))).filter((s): s is Stat => s !== undefined);
  const children = new Map<number, Stat[]>();
  for (const s of stats) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s]);
  const byPid = new Map(stats.map((s) => [s.pid, s]));
  const out: Record<string, number> = {};
  for (const [name, root] of Object.entries(roots)) {
    let total = 0;
    const todo = [root];
    const seen = new Set<number>();
    while (todo.length > 0) {
      const pid = todo.pop() as number;
      if (seen.has(pid)) continue;
      seen.add(pid);
      total += byPid.get(pid)?.cpuMs ?? 0;
      for (const c of children.get(pid) ?? []) todo.push(c.pid);
    }
    out[name] = total;
  }
  return out;
}

/** `after - before`, per name. */
export function cpuBetween(before: Readonly<Record<string, number>>, after: Readonly<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]));
}
