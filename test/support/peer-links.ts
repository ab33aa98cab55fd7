import type { Socket } from 'node:net';
import { socketOwner } from './socket-owner.js';
import { type LinkVerdict, TcpProxy } from './tcp-proxy.js';

/** How a cut link fails: connections reset and refused, or held in silence (packets dropped). */
export type PartitionMode = 'cut' | 'silence';

/**
 * One TCP proxy in front of each member's peer port (etcd's raft port, an Erlang node's
 * distribution port) of a test cluster. Members are told the proxy's address, so every byte
 * between two members crosses the proxy in front of one of them, and the proxy tells from
 * `/proc` which member opened a connection. So the link between two members can be cut in
 * both directions while clients, which never come through here, still reach both — a real
 * partition, on loopback, without root or network namespaces.
 */
export class PeerLinks {
  /** Cut links, keyed `a-b` with a < b. */
  private readonly down = new Map<string, PartitionMode>();

  private constructor(private readonly proxies: readonly TcpProxy[]) {}

  /**
   * Starts one proxy per member, in front of `targetPorts[i]`. `owners()` gives, per member,
   * the PID of the process that opens its peer connections (≤ 0 while it is not running).
   */
  static async start(targetPorts: readonly number[], owners: () => Promise<readonly number[]>): Promise<PeerLinks> {
    const identify = async (client: Socket): Promise<string | undefined> => {
      if (client.remotePort === undefined || client.localPort === undefined) return undefined;
      const pids = await owners();
      const pid = await socketOwner(client.remotePort, client.localPort, pids);
      return pid === undefined ? undefined : String(pids.indexOf(pid));
    };
    const proxies: TcpProxy[] = [];
    try {
      for (const port of targetPorts) proxies.push(await TcpProxy.start({ port, identify }));
    } catch (err) {
      await Promise.allSettled(proxies.map((p) => p.close()));
      throw err;
    }
    return new PeerLinks(proxies);
  }

  /** The port members dial to reach member `i`. */
  port(i: number): number {
    return this.proxyOf(i).port;
  }

  /** Cuts the link between members `a` and `b`, in both directions. */
  cutLink(a: number, b: number, mode: PartitionMode = 'cut'): void {
    if (a === b) throw new Error(`a link needs two members, got ${a} twice`);
    this.down.set(key(a, b), mode);
    this.apply();
  }

  healLink(a: number, b: number): void {
    this.down.delete(key(a, b));
    this.apply();
  }

  /** Cuts every link of member `i`: it is alone, its peers still see each other. */
  isolate(i: number, mode: PartitionMode = 'cut'): void {
    this.proxyOf(i);
    for (let j = 0; j < this.proxies.length; j++) if (j !== i) this.down.set(key(i, j), mode);
    this.apply();
  }

  /** Heals every link of member `i`. */
  rejoin(i: number): void {
    for (let j = 0; j < this.proxies.length; j++) if (j !== i) this.down.delete(key(i, j));
    this.apply();
  }

  healAll(): void {
    this.down.clear();
    this.apply();
  }

  /** True while every link of member `i` is cut. */
  isolated(i: number): boolean {
    return this.proxies.every((_, j) => j === i || this.down.has(key(i, j)));
  }

  /** True while a connection between members `a` and `b` (either way) is open and identified. */
  linked(a: number, b: number): boolean {
    return this.proxyOf(b).sources.includes(String(a)) || this.proxyOf(a).sources.includes(String(b));
  }

  /**
   * Waits until every pair of members has an identified connection: the proof that links can
   * be cut here (it needs `/proc/net/tcp` and the members' `/proc/<pid>/fd` to be readable).
   */
  async waitMesh(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const missing: string[] = [];
      for (let a = 0; a < this.proxies.length; a++) {
        for (let b = a + 1; b < this.proxies.length; b++) if (!this.linked(a, b)) missing.push(`${a}-${b}`);
      }
      if (missing.length === 0) return;
      if (Date.now() > deadline) {
        throw new Error(
          `peer links: no identified connection for member pairs ${missing.join(', ')} after ${timeoutMs} ms (sources per proxy: ${JSON.stringify(this.sources())}); ` +
            'telling members apart needs /proc/net/tcp and /proc/<pid>/fd of the member processes (Linux, same user)',
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Per proxy, who its open connections came from (`?` = not a member, e.g. a CLI tool). */
  sources(): string[][] {
    return this.proxies.map((p) => p.sources);
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.proxies.map((p) => p.close()));
  }

  private proxyOf(i: number): TcpProxy {
    const proxy = this.proxies[i];
    if (!proxy) throw new Error(`no member ${i} (the cluster has ${this.proxies.length})`);
    return proxy;
  }

  private apply(): void {
    this.proxies.forEach((proxy, target) => {
      // Connections from outside the cluster (clients, CLI tools) always pass.
      proxy.setFilter((source): LinkVerdict => (source === undefined ? 'pass' : (this.down.get(key(Number(source), target)) ?? 'pass')));
    });
  }
}

function key(a: number, b: number): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`;
}
