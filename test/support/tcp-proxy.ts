import { connect, createServer, type Server, type Socket } from 'node:net';

/** What a proxy does with one connection: forward it, reset it, or hold it in silence. */
export type LinkVerdict = 'pass' | 'cut' | 'silence';

/** Options of {@link TcpProxy.start}. */
export interface TcpProxyOptions {
  readonly host?: string;
  readonly port: number;
  /**
   * Names the source of a new connection (e.g. which cluster member opened it) before anything
   * is forwarded; the name is what {@link TcpProxy.setFilter}'s function judges.
   */
  readonly identify?: (client: Socket) => Promise<string | undefined>;
}

interface Pair {
  readonly client: Socket;
  readonly source: string | undefined;
  upstream: Socket | undefined;
  flowing: boolean;
}

/**
 * A TCP proxy on a free loopback port in front of a server, for partition tests.
 *
 * - `pause()`: a partition as TCP sees it — nothing is forwarded in either direction and new
 *   connections hang, but no connection is closed (the peers see silence, not a reset).
 *   `resume()` delivers what was held back.
 * - `cut()`: every connection is reset and new ones are refused until `heal()`.
 * - `setFilter(fn)`: the same per source — with `identify`, each connection carries the name of
 *   whoever opened it and `fn(source)` says whether it passes, is cut or is held in silence.
 */
export class TcpProxy {
  private readonly pairs = new Set<Pair>();
  private paused = false;
  private refusing = false;
  private filter: ((source: string | undefined) => LinkVerdict) | undefined;
  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
    private readonly identify: TcpProxyOptions['identify'],
  ) {}

  /** Starts a proxy to `target` on a free port of 127.0.0.1. */
  static async start(options: TcpProxyOptions): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const proxy = new TcpProxy(server, port, { host: options.host ?? '127.0.0.1', port: options.port }, options.identify);
    server.on('connection', (socket) => void proxy.accept(socket));
    return proxy;
  }

  /** `http://127.0.0.1:<port>`, for etcd endpoints. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private async accept(client: Socket): Promise<void> {
    // Until bridged, data waits in the socket's buffer; an early reset must not crash the run.
    client.on('error', () => client.destroy());
    let source: string | undefined;
    if (this.identify) {
      try {
        source = await this.identify(client);
      } catch {
        source = undefined;
      }
    }
    if (client.destroyed) return;
    const pair: Pair = { client, source, upstream: undefined, flowing: false };
    this.pairs.add(pair);
    client.once('close', () => this.drop(pair));
    this.apply(pair);
  }

  private verdict(pair: Pair): LinkVerdict {
    if (this.refusing) return 'cut';
    if (this.paused) return 'silence';
    return this.filter?.(pair.source) ?? 'pass';
  }

  /** Brings one connection in line with the proxy's state. */
  private apply(pair: Pair): void {
    const verdict = this.verdict(pair);
    if (verdict === 'cut') {
      pair.client.resetAndDestroy();
      pair.upstream?.destroy();
      this.pairs.delete(pair);
      return;
    }
    if (verdict === 'silence') {
      if (pair.flowing && pair.upstream) {
        pair.client.unpipe(pair.upstream);
        pair.upstream.unpipe(pair.client);
        pair.upstream.pause();
      }
      pair.client.pause();
      pair.flowing = false;
      return;
    }
    if (pair.flowing) return;
    // Connections that waited in silence are only now connected upstream.
    const upstream = (pair.upstream ??= this.connectUpstream(pair));
    pair.client.pipe(upstream);
    upstream.pipe(pair.client);
    pair.client.resume();
    upstream.resume();
    pair.flowing = true;
  }

  private connectUpstream(pair: Pair): Socket {
    const upstream = connect(this.target.port, this.target.host);
    upstream.on('error', () => this.drop(pair));
    upstream.once('close', () => this.drop(pair));
    return upstream;
  }

  private drop(pair: Pair): void {
    this.pairs.delete(pair);
    pair.client.destroy();
    pair.upstream?.destroy();
  }

  private reconcile(): void {
    for (const pair of [...this.pairs]) this.apply(pair);
  }

  /** Stops forwarding in both directions without closing anything. */
  pause(): void {
    this.paused = true;
    this.reconcile();
  }

  /** Forwards again, including what was held back, and serves connections that waited. */
  resume(): void {
    this.paused = false;
    this.reconcile();
  }

  /** Resets every connection and refuses new ones until {@link heal}. */
  cut(): void {
    this.refusing = true;
    this.reconcile();
  }

  /** Undoes {@link cut} and {@link pause}. */
  heal(): void {
    this.refusing = false;
    this.paused = false;
    this.reconcile();
  }

  /**
   * Judges every connection by its source (see {@link TcpProxyOptions.identify}), now and for
   * new ones; `undefined` forwards everything again. `cut()` and `pause()` take precedence.
   */
  setFilter(filter: ((source: string | undefined) => LinkVerdict) | undefined): void {
    this.filter = filter;
    this.reconcile();
  }

  /** Number of open proxied connections (forwarding or held in silence). */
  get connections(): number {
    return [...this.pairs].filter((p) => p.upstream !== undefined).length;
  }

  /** The sources of the open connections, for diagnostics (`?` when unidentified). */
  get sources(): string[] {
    return [...this.pairs].map((p) => p.source ?? '?');
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
