import { createServer, type Server, type Socket } from 'node:net';

/**
 * A port mapper for the Erlang nodes of one test cluster, speaking the part of epmd's protocol
 * that nodes and RabbitMQ's CLI use (register, look up, list names). It differs from Debian's
 * epmd in one way: for a node that has a stand-in port (the {@link PeerLinks} proxy in front of
 * its distribution port), a lookup answers with the stand-in, so every distribution connection
 * between the nodes crosses a proxy that a test can cut.
 *
 * It runs inside the test process, so nothing outlives the run (a real epmd daemonizes).
 */

const ALIVE2_REQ = 120; // 'x'
const ALIVE2_X_RESP = 118; // 'v': result and a 32-bit creation (OTP 23+)
const PORT_PLEASE2_REQ = 122; // 'z'
const PORT2_RESP = 119; // 'w'
const NAMES_REQ = 110; // 'n'

interface Registration {
  readonly port: number;
  readonly nodeType: number;
  readonly protocol: number;
  readonly highest: number;
  readonly lowest: number;
  readonly extra: Buffer;
  readonly socket: Socket;
}

/** An epmd on a free loopback port; set `ERL_EPMD_PORT` to {@link port} for server and CLI. */
export class PortMapper {
  private readonly nodes = new Map<string, Registration>();
  private readonly standIns = new Map<string, number>();
  private readonly sockets = new Set<Socket>();
  // A node that re-registers gets a new creation, so its peers can tell its incarnations apart.
  private creation = 1 + Math.floor(Math.random() * 1_000_000);

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(): Promise<PortMapper> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    const mapper = new PortMapper(server, typeof address === 'object' && address ? address.port : 0);
    server.on('connection', (socket) => mapper.accept(socket));
    return mapper;
  }

  /** Lookups of `name` (the part before `@`) answer `port` instead of the registered one. */
  setStandIn(name: string, port: number): void {
    this.standIns.set(name, port);
  }

  /** The port a node registered itself with, if it is registered. */
  registeredPort(name: string): number | undefined {
    return this.nodes.get(name)?.port;
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.once('close', () => {
      this.sockets.delete(socket);
      // A node stays registered exactly as long as its registration connection is open.
      for (const [name, reg] of this.nodes) if (reg.socket === socket) this.nodes.delete(name);
    });
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= 2) {
        const length = buffer.readUInt16BE(0);
        if (buffer.length < 2 + length) return;
        const request = buffer.subarray(2, 2 + length);
        buffer = buffer.subarray(2 + length);
        this.handle(socket, request);
      }
    });
  }

  private handle(socket: Socket, req: Buffer): void {
    const code: number = req[0] ?? 0;
    switch (code) {
      case ALIVE2_REQ:
        this.register(socket, req);
        return;
      case PORT_PLEASE2_REQ:
        this.lookup(socket, req.subarray(1).toString('utf8'));
        return;
      case NAMES_REQ:
        this.names(socket);
        return;
      default:
        socket.destroy(); // kill, stop, dump: not for tests
    }
  }

  private register(socket: Socket, req: Buffer): void {
    const port = req.readUInt16BE(1);
    const nameLength = req.readUInt16BE(9);
    const name = req.subarray(11, 11 + nameLength).toString('utf8');
    const extraLength = req.length >= 13 + nameLength ? req.readUInt16BE(11 + nameLength) : 0;
    const reply = Buffer.alloc(6);
    reply[0] = ALIVE2_X_RESP;
    if (this.nodes.has(name)) {
      reply[1] = 1; // name in use
      socket.end(reply);
      return;
    }
    this.nodes.set(name, {
      port,
      nodeType: req[3]!,
      protocol: req[4]!,
      highest: req.readUInt16BE(5),
      lowest: req.readUInt16BE(7),
      extra: Buffer.from(req.subarray(13 + nameLength, 13 + nameLength + extraLength)),
      socket,
    });
    reply[1] = 0;
    reply.writeUInt32BE(this.creation++ % 0xffffffff || 1, 2);
    socket.write(reply); // one write: the node expects the whole reply in one packet
  }

  private lookup(socket: Socket, name: string): void {
    const reg = this.nodes.get(name);
    if (!reg) {
      socket.end(Buffer.from([PORT2_RESP, 1]));
      return;
    }
    const nameBytes = Buffer.from(name, 'utf8');
    const head = Buffer.alloc(12);
    head[0] = PORT2_RESP;
    head[1] = 0;
    head.writeUInt16BE(this.standIns.get(name) ?? reg.port, 2);
    head[4] = reg.nodeType;
    head[5] = reg.protocol;
    head.writeUInt16BE(reg.highest, 6);
    head.writeUInt16BE(reg.lowest, 8);
    head.writeUInt16BE(nameBytes.length, 10);
    const extraLength = Buffer.alloc(2);
    extraLength.writeUInt16BE(reg.extra.length, 0);
    socket.end(Buffer.concat([head, nameBytes, extraLength, reg.extra]));
  }

  private names(socket: Socket): void {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(this.port, 0);
    const lines = [...this.nodes].map(([name, reg]) => `name ${name} at port ${this.standIns.get(name) ?? reg.port}\n`).join('');
    socket.end(Buffer.concat([head, Buffer.from(lines, 'utf8')]));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
