/**
 * Which operating-system process this is, read from Linux's /proc: what an incarnation records
 * so that a fence can later find that very process — and tell it from a later one that reused
 * its pid — and what the process-gone check reads about another process.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import { hostname, networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import type { Config } from '../config/schema.js';
import { CoordinatorError, messageOf } from '../errors.js';
import type { ProcessIdentity } from '../identity.js';

/** What `/proc/<pid>/stat` says about a process that has a /proc entry. */
export interface ProcStat {
  /** Field 3: R, S, D, T, t, Z, X, … */
  readonly state: string;
  /** Field 22: start time in clock ticks since boot, decimal. */
  readonly startTicks: string;
}

/**
 * Parses the fields of `/proc/<pid>/stat` that a fence needs, or undefined when the text is not
 * such a line. Field 2 is the command name in parentheses, which may itself hold spaces and
 * parentheses (`(a) b)`): the fields after it start after the LAST `)`.
 */
export function parseProcStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0 || text.indexOf('(') < 0 || text.indexOf('(') > close) return undefined;
  // After `) ` come fields 3, 4, …: field n is at index n - 3.
  const rest = text.slice(close + 1).trim().split(/\s+/);
  const state = rest[0];
  const startTicks = rest[22 - 3];
  if (state === undefined || !/^[A-Za-z]$/.test(state) || startTicks === undefined || !/^\d+$/.test(startTicks)) return undefined;
  return { state, startTicks };
}

/** The pid namespace link (`pid:[4026531836]`), or undefined when the text is not one. */
export function parsePidNamespace(link: string): string | undefined {
  const trimmed = link.trim();
  return /^pid:\[\d+\]$/.test(trimmed) ? trimmed : undefined;
}

/** The boot id (`/proc/sys/kernel/random/boot_id`, a UUID), or undefined when the text is not one. */
export function parseBootId(text: string): string | undefined {
  const trimmed = text.trim().toLowerCase();
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(trimmed) ? trimmed : undefined;
}

/**
 * The machine's addresses a fence agent could reach it by: neither loopback nor IPv6
 * link-local (meaningless without the interface they belong to), sorted, each once.
 */
export function machineAddresses(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): string[] {
  const addresses = new Set<string>();
  for (const infos of Object.values(interfaces)) {
    for (const info of infos ?? []) {
      if (info.internal || /^fe[89ab][0-9a-f]:/i.test(info.address)) continue;
      addresses.add(info.address);
    }
  }
  return [...addresses].sort();
}

/**
 * This process's identity, as an incarnation records it.
 *
 * @throws CoordinatorError `UNSUPPORTED` when /proc cannot be read or says something unexpected
 *   (hearth runs on Linux only)
 */
export async function currentProcess(config: Pick<Config, 'fencing'>): Promise<ProcessIdentity> {
  const [stat, bootId, pidNamespace] = await Promise.all([
    readProc('/proc/self/stat', readFile, parseProcStat),
    readProc('/proc/sys/kernel/random/boot_id', readFile, parseBootId),
    readProc('/proc/self/ns/pid', readlink, parsePidNamespace),
  ]);
  const pod = config.fencing.pod;
  return {
    pid: process.pid,
    startTicks: stat.startTicks,
    bootId,
    pidNamespace,
    hostname: hostname(),
    addresses: machineAddresses(networkInterfaces()),
    startedAtMs: Math.round(Date.now() - process.uptime() * 1000),
    ...(pod.name !== '' ? { pod: { name: pod.name, uid: pod.uid, namespace: pod.namespace, node: pod.node, container: pod.container } } : {}),
  };
}

async function readProc<T>(path: string, read: (path: string, encoding: 'utf8') => Promise<string>, parse: (text: string) => T | undefined): Promise<T> {
  let text: string;
  try {
    text = await read(path, 'utf8');
  } catch (err) {
    throw new CoordinatorError('UNSUPPORTED', `cannot read ${path} (${messageOf(err)}): hearth needs Linux's /proc to record which process it is`, { cause: err });
  }
  const parsed = parse(text);
  if (parsed === undefined) throw new CoordinatorError('UNSUPPORTED', `${path} does not hold what Linux writes there: ${JSON.stringify(text.slice(0, 80))}`);
  return parsed;
}

/** What the process-gone check needs about another process on this machine. */
export interface ProcessState {
  /** Field 22 of its stat: tells it from a later process that reused the pid. */
  readonly startTicks: string;
  /**
   * It has exited and waits only to be reaped by its parent: every thread is gone (a zombie
   * whose main thread alone ended, with other threads still running, is not one).
   */
  readonly exited: boolean;
}

/**
 * The process with `pid` in this process's pid namespace, or undefined when there is none
 * (its /proc entry is gone).
 *
 * @throws CoordinatorError `UNSUPPORTED` when /proc/<pid>/stat exists but cannot be read or parsed
 */
export async function readProcess(pid: number): Promise<ProcessState | undefined> {
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    // ESRCH: it vanished between opening and reading.
    if (isGone(err)) return undefined;
    throw new CoordinatorError('UNSUPPORTED', `cannot read /proc/${pid}/stat (${messageOf(err)})`, { cause: err });
  }
  const stat = parseProcStat(text);
  if (!stat) throw new CoordinatorError('UNSUPPORTED', `/proc/${pid}/stat does not hold what Linux writes there: ${JSON.stringify(text.slice(0, 80))}`);
  return { startTicks: stat.startTicks, exited: stat.state === 'X' || (stat.state === 'Z' && (await onlyMainThreadLeft(pid))) };
}

/** A zombie's task list holds its main thread alone once every other thread has ended too. */
async function onlyMainThreadLeft(pid: number): Promise<boolean> {
  try {
    const tasks = await readdir(`/proc/${pid}/task`);
    return tasks.length <= 1;
  } catch (err) {
    // Gone meanwhile: reaped. Unreadable: not known to be over, so not over.
    return isGone(err);
  }
}

function isGone(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'ENOENT' || code === 'ESRCH';
}
