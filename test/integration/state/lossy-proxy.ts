import { connect, createServer, type Server, type Socket } from 'node:net';

/** What the proxy does with bytes in each direction. */
export type LossMode = 'forward' | 'drop-replies' | 'drop-requests';

/**
 * A TCP proxy that can silently discard one direction: `drop-replies` lets requests reach the
 * server (so writes apply) but loses their answers; `drop-requests` loses the requests. After
 * losing bytes a stream is out of step, so `resetAll()` ends every connection and the client
 * reconnects. For tests of writes whose outcome is unknown.
 */
export class LossyProxy {
  mode: LossMode = 'forward';
  /** Bytes discarded so far, by direction. */
  readonly dropped = { requests: 0, replies: 0 };
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<LossyProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    const proxy = new LossyProxy(server, typeof address === 'object' && address ? address.port : 0);
    server.on('connection', (client) => proxy.bridge(client, targetPort));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private bridge(client: Socket, targetPort: number): void {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    }
    client.on('data', (chunk: Buffer) => {
      if (this.mode === 'drop-requests') this.dropped.requests += chunk.length;
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (this.mode === 'drop-replies') this.dropped.replies += chunk.length;
      else client.write(chunk);
    });
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.once('error', close).once('close', close);
    upstream.once('error', close).once('close', close);
  }

  /** Resets every open connection (the client sees ECONNRESET and reconnects). */
  resetAll(): void {
    for (const s of this.sockets) s.resetAndDestroy();
  }

  async close(): Promise<void> {
    this.resetAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
