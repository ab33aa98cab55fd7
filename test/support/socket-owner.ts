import { readdir, readFile, readlink } from 'node:fs/promises';

/**
 * Which process opened a loopback TCP connection, read from Linux's `/proc`: the proxies of the
 * test clusters use it to tell which member a peer connection comes from, because every member
 * connects from 127.0.0.1 and no server here can choose its source address.
 */

/** `127.0.0.1:port` as `/proc/net/tcp` writes it (address little-endian, port big-endian hex). */
function procAddress(port: number): string {
  return `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The socket inode of the connection from `127.0.0.1:fromPort` to `127.0.0.1:toPort`, if open. */
async function connectionInode(fromPort: number, toPort: number): Promise<string | undefined> {
  const local = procAddress(fromPort);
  const remote = procAddress(toPort);
  const table = await readFile('/proc/net/tcp', 'utf8');
  for (const line of table.split('\n')) {
    const fields = line.trim().split(/\s+/);
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode …
    if (fields[1] === local && fields[2] === remote && fields[9] !== '0') return fields[9];
  }
  return undefined;
}

async function holdsSocket(pid: number, link: string): Promise<boolean> {
  let fds: string[];
  try {
    fds = await readdir(`/proc/${pid}/fd`);
  } catch {
    return false; // Gone, or not ours to read.
  }
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''))); // '' = closed meanwhile
  return targets.includes(link);
}

/**
 * Of `pids`, the one that holds the client end of the connection `fromPort → toPort` (both on
 * 127.0.0.1), or undefined when none does (another process, or the connection is gone).
 */
export async function socketOwner(fromPort: number, toPort: number, pids: readonly number[]): Promise<number | undefined> {
  const inode = await connectionInode(fromPort, toPort);
  if (inode === undefined) return undefined;
  const link = `socket:[${inode}]`;
  for (const pid of pids) {
    if (pid > 0 && (await holdsSocket(pid, link))) return pid;
  }
  return undefined;
}

/** The first child of `pid` (e.g. the Erlang VM under RabbitMQ's wrapper shell), if any. */
export async function firstChild(pid: number): Promise<number | undefined> {
  try {
    const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(/\s+/);
    const child = Number(children[0]);
    return Number.isInteger(child) && child > 0 ? child : undefined;
  } catch {
    return undefined;
  }
}
