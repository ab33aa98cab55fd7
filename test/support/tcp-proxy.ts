import { connect, createServer, type Server, type Socket } from 'node:net';

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
}

/**
 * A TCP proxy on a free loopback port in front of a server, for partition tests.
 *
 * - `pause()`: a partition as TCP sees it — nothing is forwarded in either direction and new
 *   connections hang, but no connection is closed (the peers see silence, not a reset).
 *   `resume()` delivers what was held back.
 * - `cut()`: every connection is reset and new ones are refused until `heal()`.
 */
export class TcpProxy {
  private readonly pairs = new Set<Pair>();
  private paused = false;
  private refusing = false;
  private readonly pendingClients = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  /** Starts a proxy to `target` on a free port of 127.0.0.1. */
  static async start(target: { host?: string; port: number }): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const proxy = new TcpProxy(server, port, { host: target.host ?? '127.0.0.1', port: target.port });
    server.on('connection', (socket) => proxy.accept(socket));
    return proxy;
  }

  /** `http://127.0.0.1:<port>`, for etcd endpoints. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private accept(client: Socket): void {
    if (this.refusing) {
      client.resetAndDestroy();
      return;
    }
    if (this.paused) {
      // Hold the connection without answering until resume().
      client.pause();
      this.pendingClients.add(client);
      client.once('close', () => this.pendingClients.delete(client));
      return;
    }
    this.bridge(client);
  }

  private bridge(client: Socket): void {
    const upstream = connect(this.target.port, this.target.host);
    const pair = { client, upstream };
    this.pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const close = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.once('error', close);
    upstream.once('error', close);
    client.once('close', close);
    upstream.once('close', close);
    if (this.paused) {
      client.pause();
      upstream.pause();
    }
  }

  /** Stops forwarding in both directions without closing anything. */
  pause(): void {
    this.paused = true;
    for (const { client, upstream } of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  /** Forwards again, including what was held back, and serves connections that waited. */
  resume(): void {
    this.paused = false;
    for (const { client, upstream } of this.pairs) {
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
      upstream.resume();
    }
    for (const client of this.pendingClients) {
      this.pendingClients.delete(client);
      client.resume();
      this.bridge(client);
    }
  }

  /** Resets every connection and refuses new ones until {@link heal}. */
  cut(): void {
    this.refusing = true;
    for (const client of this.pendingClients) client.resetAndDestroy();
    this.pendingClients.clear();
    for (const { client, upstream } of this.pairs) {
      client.resetAndDestroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  /** Undoes {@link cut} and {@link pause}. */
  heal(): void {
    this.refusing = false;
    if (this.paused) this.resume();
  }

  /** Number of open proxied connections. */
  get connections(): number {
    return this.pairs.size;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
