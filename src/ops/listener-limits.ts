import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * How long a client may take and how many may be connected at once, for one HTTP listener (the
 * API's or the ops port's). Node's own defaults suit a server behind a proxy, not one facing
 * clients directly: no request timeout at all, 60 s for headers, and no connection limit, so a
 * few clients trickling a declared body one byte at a time could hold sockets for ever.
 */
export interface ListenerLimits {
  /** Longest time to receive a whole request, headers and body (Node's `requestTimeout`). */
  readonly requestTimeoutMs: number;
  /** Longest time to receive the request headers (Node's `headersTimeout`); at most `requestTimeoutMs`. */
  readonly headersTimeoutMs: number;
  /** How long an idle keep-alive connection stays open between requests. */
  readonly keepAliveTimeoutMs: number;
  /** Most connections open at once; further ones are closed as soon as they are accepted. */
  readonly maxConnections: number;
}

/**
 * An HTTP/1.1 server that applies `limits`. Node checks the request and header deadlines
 * periodically (`connectionsCheckingInterval`); it is set to at most a second, so a deadline is
 * enforced within about a second of passing rather than Node's default 30 s. A socket that sends
 * nothing for `requestTimeoutMs` is closed too (Node's idle `timeout`), so a connection that never
 * starts a request cannot outlive the deadline either.
 */
export function createLimitedServer(limits: ListenerLimits, handler: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const headersTimeout = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  const server = createServer(
    {
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(headersTimeout / 2))),
      // Node would answer a request without Host itself, with an empty 400; the handler answers it
      // (the API with a fault body where the Host matters, in noauth mode).
      requireHostHeader: false,
    },
    handler,
  );
  server.maxConnections = limits.maxConnections;
  server.setTimeout(limits.requestTimeoutMs, (socket: Socket) => socket.destroy());
  return server;
}

/** What a listener answers to a request Node could not even parse (see {@link writeClientError}). */
export interface ClientErrorAnswer {
  readonly status: number;
  readonly body: string;
  readonly contentType: string;
}

/**
 * The status for a client error Node reports before any handler runs: 408 for a request or
 * header deadline, 431 for oversized headers, 400 for anything malformed.
 */
export function clientErrorStatus(err: NodeJS.ErrnoException): 400 | 408 | 431 {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 408;
  if (err.code === 'HPE_HEADER_OVERFLOW') return 431;
  return 400;
}

/**
 * Writes `answer` on a socket whose request could not be parsed, with `Connection: close`, and
 * destroys it: the stream cannot be trusted past the error. A reset or already destroyed socket
 * gets nothing.
 */
export function writeClientError(err: NodeJS.ErrnoException, socket: Duplex, answer: (status: number) => ClientErrorAnswer): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const a = answer(clientErrorStatus(err));
  if (socket.writable) {
    const reason = a.status === 408 ? 'Request Timeout' : a.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
    socket.write(
      `HTTP/1.1 ${a.status} ${reason}\r\nContent-Type: ${a.contentType}\r\nContent-Length: ${Buffer.byteLength(a.body)}\r\nConnection: close\r\n\r\n${a.body}`,
    );
  }
  socket.destroy();
}
