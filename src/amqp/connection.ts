/**
 * One RabbitMQ connection that keeps itself up: hearth's retry policy (`lifecycle/retry.ts`,
 * jittered and capped by `amqp.reconnectMaxDelayMs`), a fresh confirm channel per connection,
 * and a setup hook (topology, consumers) run on every connection before it is reported up.
 *
 * amqplib 2.x has a built-in `recovery` option, but it only reopens the connection: channels,
 * consumers and the state the rest of hearth reads (ready or not, since when, why) are ours to
 * rebuild and report either way, with the same retry shape as every other loop in hearth.
 */
import { setMaxListeners } from 'node:events';
import { type ChannelModel, type ConfirmChannel, connect } from 'amqplib';
import { redactUrl } from '../config/redact.js';
import { AbortedError, BackendAccessError, BackendUnavailableError, ClosedError, describeError } from '../errors.js';
import { sleep, systemClock } from '../lifecycle/clock.js';
import { withDeadline } from '../lifecycle/deadline.js';
import { Backoff, retry } from '../lifecycle/retry.js';
import type { Logger } from '../observability/logger.js';
import { explainAmqpFailure } from './access.js';
import { type AmqpConnectionSettings, socketOptionsFor, withHeartbeat } from './socket-options.js';

/** Where a connection stands: `connecting` (first attempt), `up`, `down` (reconnecting), `closed`. */
export type ConnectionState = 'connecting' | 'up' | 'down' | 'closed';

/** A change of {@link ConnectionState}. */
export interface ConnectionStateChange {
  readonly state: ConnectionState;
  readonly previous: ConnectionState;
  /** Epoch ms. */
  readonly at: number;
  /** Why it went down, when it did (never a secret). */
  readonly error?: string;
}

/** The instruments a connection updates. */
export interface ConnectionMetrics {
  readonly amqpConnectionUp: { set(value: number): void };
  readonly amqpReconnects: { inc(): void };
}

export type { AmqpConnectionSettings } from './socket-options.js';

/** One live connection; `signal` aborts when it is gone. */
export interface AmqpSession {
  readonly model: ChannelModel;
  /** The connection's confirm channel for publishes and dead-letters. */
  readonly confirm: ConfirmChannel;
  /** Message ids the broker returned as unroutable (mandatory publishes) and not yet read. */
  readonly returned: Set<string>;
  readonly signal: AbortSignal;
  /** Counts connections: 1 for the first. */
  readonly generation: number;
  /** Drops this connection on purpose, e.g. after a channel error; the loop reconnects. */
  reset(reason: string): void;
}

/** Dependencies of {@link AmqpConnection}. */
export interface AmqpConnectionOptions {
  readonly logger: Logger;
  readonly metrics: ConnectionMetrics;
  /** Connection name shown by `rabbitmqctl list_connections`. */
  readonly name: string;
  /** Runs on every new connection before it is reported up; a throw fails the attempt. */
  readonly setup: (session: AmqpSession) => Promise<void>;
}

const RECONNECT_MIN_DELAY_MS = 200;

/**
 * See the module doc.
 *
 * Failure semantics: a lost connection (broker restart or kill, TCP reset, two missed
 * heartbeats) moves the state to `down`, aborts the session's signal, and starts reconnecting
 * until `close()`; credentials or topology errors are retried the same way (and logged), since
 * an operator can fix them without restarting hearth. A refusal (wrong password, untrusted or
 * missing certificate, missing permission) is kept as a {@link BackendAccessError} in
 * {@link failure}, with a message that says what to fix and never holds a secret.
 */
export class AmqpConnection {
  private stateValue: ConnectionState = 'connecting';
  private session: AmqpSession | undefined;
  private generation = 0;
  private lastError = '';
  private lastFailure: Error | undefined;
  private readonly listeners = new Set<(change: ConnectionStateChange) => void>();
  private readonly stop = new AbortController();
  private running: Promise<void> | undefined;
  /** A session `open()` returned that the loop has not taken yet (retry drops it when aborted). */
  private opened: AmqpSession | undefined;

  private readonly reconnect: Backoff;

  constructor(
    private readonly settings: AmqpConnectionSettings,
    private readonly deps: AmqpConnectionOptions,
  ) {
    this.reconnect = new Backoff({ initialDelayMs: Math.min(RECONNECT_MIN_DELAY_MS, settings.reconnectMaxDelayMs), maxDelayMs: settings.reconnectMaxDelayMs });
    // Every caller waiting for a session (a publish while the broker is away) listens on it; dozens at once are normal, not a leak.
    setMaxListeners(0, this.stop.signal);
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  /** Why the last attempt or connection failed ('' when none did). */
  get error(): string {
    return this.lastError;
  }

  /** Why the last attempt failed, typed (BackendAccessError for a refusal); undefined while up. */
  get failure(): Error | undefined {
    return this.lastFailure;
  }

  /** The live session, if the connection is up. */
  current(): AmqpSession | undefined {
    return this.stateValue === 'up' ? this.session : undefined;
  }

  onStateChange(listener: (change: ConnectionStateChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts the connect loop in the background. Idempotent. */
  start(): void {
    if (this.stop.signal.aborted) throw new ClosedError('job bus');
    this.running ??= this.loop();
  }

  /**
   * Resolves with the live session, waiting for one if needed.
   *
   * @throws AbortedError on `signal` (callers pass their deadline in it); ClosedError.
   */
  async waitForSession(signal: AbortSignal): Promise<AmqpSession> {
    for (;;) {
      if (this.stop.signal.aborted) throw new ClosedError('job bus');
      const session = this.current();
      if (session) return session;
      if (signal.aborted) throw new AbortedError('waiting for RabbitMQ', { cause: signal.reason });
      await new Promise<void>((resolve) => {
        const off = this.onStateChange(() => done());
        const done = (): void => {
          off();
          signal.removeEventListener('abort', done);
          this.stop.signal.removeEventListener('abort', done);
          resolve();
        };
        signal.addEventListener('abort', done, { once: true });
        this.stop.signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  /**
   * Stops reconnecting and closes the connection. Idempotent.
   *
   * Failure semantics: waits for the broker's close-ok at most `connectTimeoutMs`, and not at
   * all for a connection that is already closed; background closes of dropped connections and
   * an attempt still connecting are cut short and their sockets destroyed, so a closed
   * connection never holds the process (e.g. after SIGSTOP/SIGCONT).
   */
  async close(): Promise<void> {
    if (this.stop.signal.aborted) return this.running;
    this.stop.abort(new ClosedError('job bus'));
    const session = this.session;
    this.session = undefined;
    if (session) await closeModel(session.model, this.settings.connectTimeoutMs);
    this.setState('closed');
    this.deps.metrics.amqpConnectionUp.set(0);
    await this.running;
  }

  private async loop(): Promise<void> {
    while (!this.stop.signal.aborted) {
      let session: AmqpSession;
      try {
        session = await retry((attempt) => this.open(attempt), {
          backoff: this.reconnect,
          clock: systemClock,
          signal: this.stop.signal,
          onRetry: (err, failures) => this.attemptFailed(err, failures),
          what: 'connecting to RabbitMQ',
        });
      } catch (err) {
        if (this.stop.signal.aborted) {
          // close() came while an attempt was connecting: retry throws away what it opened.
          const orphan = this.opened;
          this.opened = undefined;
          if (orphan) await closeModel(orphan.model, this.settings.connectTimeoutMs, this.stop.signal);
          return;
        }
        // Only a non-retryable surprise lands here; never spin on it.
        this.deps.logger.error({ err }, 'RabbitMQ connect loop failed; trying again');
        await sleep(this.settings.reconnectMaxDelayMs, this.stop.signal).catch(() => undefined);
        continue;
      }
      this.opened = undefined;
      if (this.stop.signal.aborted) {
        await closeModel(session.model, this.settings.connectTimeoutMs, this.stop.signal);
        return;
      }
      await this.serve(session);
    }
  }

  /** Reports the session up and waits until it is gone. */
  private async serve(session: AmqpSession): Promise<void> {
    if (session.signal.aborted) {
      // Lost during setup: go round again, but never spin on a broker that drops us at once.
      await sleep(RECONNECT_MIN_DELAY_MS, this.stop.signal).catch(() => undefined);
      return;
    }
    this.session = session;
    if (session.generation > 1) this.deps.metrics.amqpReconnects.inc();
    this.deps.metrics.amqpConnectionUp.set(1);
    this.lastError = '';
    this.lastFailure = undefined;
    this.setState('up');
    this.deps.logger.info({ url: redactUrl(this.settings.url), generation: session.generation }, 'connected to RabbitMQ');
    await new Promise<void>((resolve) => session.signal.addEventListener('abort', () => resolve(), { once: true }));
    if (this.session === session) this.session = undefined;
    this.deps.metrics.amqpConnectionUp.set(0);
    if (this.stop.signal.aborted) return;
    this.lastError = redactUrl(describeError(session.signal.reason));
    this.deps.logger.warn({ err: session.signal.reason as unknown }, 'lost the RabbitMQ connection; reconnecting');
    this.setState('down', this.lastError);
  }

  private attemptFailed(error: unknown, attempt: number): void {
    // Stopping is no connection failure.
    if (this.stop.signal.aborted) return;
    this.lastError = redactUrl(describeError(error));
    this.lastFailure = error instanceof Error ? error : new Error(String(error));
    // A refusal will not go away by waiting: say so louder than an outage.
    const refused = error instanceof BackendAccessError;
    const level = attempt === 1 || attempt % 10 === 0 ? (refused ? 'error' : 'warn') : 'debug';
    const reason = refused ? { reason: error.reason } : {};
    this.deps.logger[level]({ attempt, err: error, ...reason, url: redactUrl(this.settings.url) }, 'cannot connect to RabbitMQ; retrying');
    if (this.stateValue === 'up') this.setState('down', this.lastError);
  }

  /** One connection attempt: connect, confirm channel, setup. Errors become retryable ones. */
  private async open(attempt: number): Promise<AmqpSession> {
    let model: ChannelModel | undefined;
    let session: AmqpSession | undefined;
    try {
      model = await connect(withHeartbeat(this.settings.url, this.settings.heartbeatSeconds), await socketOptionsFor(this.settings, this.deps.name));
      session = await this.createSession(model);
      // Bounded: right after a broker restart, a consume on a quorum queue that is still
      // recovering was seen to block its channel (and the deliveries already sent to it).
      await withDeadline(this.deps.setup(session), this.settings.connectTimeoutMs, 'declaring the topology and consumers', this.stop.signal);
      this.opened = session;
      return session;
    } catch (err) {
      // Abort the session first: a setup that is still running must see it is dead.
      session?.reset('connection setup failed');
      if (model) await closeModel(model, this.settings.connectTimeoutMs, this.stop.signal);
      const target = { url: this.settings.url, prefix: this.settings.prefix ?? '', certFile: this.settings.certFile, passwordFile: this.settings.passwordFile ?? '' };
      throw (
        explainAmqpFailure(err, target) ??
        new BackendUnavailableError('amqp', `RabbitMQ connection attempt ${attempt} failed: ${redactUrl(describeError(err))}`, { cause: err })
      );
    }
  }

  private async createSession(model: ChannelModel): Promise<AmqpSession> {
    const lost = new AbortController();
    // Every publish in flight listens on it; hundreds at once are normal, not a leak.
    setMaxListeners(0, lost.signal);
    const generation = ++this.generation;
    const gone = (reason: unknown): void => {
      if (!lost.signal.aborted) lost.abort(reason instanceof Error ? reason : new Error('connection closed'));
    };
    // amqplib emits 'error' before 'close'; without a listener an error would crash the process.
    model.on('error', (err: Error) => this.deps.logger.debug({ err }, 'RabbitMQ connection error'));
    model.on('close', (err?: Error) => {
      closedModels.add(model);
      destroySocket(model);
      gone(err ?? new Error('connection closed'));
    });
    model.on('blocked', (reason: string) => this.deps.logger.warn({ reason }, 'RabbitMQ blocked publishing (resource alarm)'));
    model.on('unblocked', () => this.deps.logger.info('RabbitMQ unblocked publishing'));
    const reset = (reason: string): void => {
      if (lost.signal.aborted) return;
      this.deps.logger.warn({ reason }, 'resetting the RabbitMQ connection');
      gone(new Error(reason));
      void closeModel(model, this.settings.connectTimeoutMs, this.stop.signal);
    };
    const confirm = await model.createConfirmChannel();
    const returned = new Set<string>();
    confirm.on('error', (err: Error) => this.deps.logger.debug({ err }, 'RabbitMQ confirm channel error'));
    // A channel error closes only the channel; publishing needs it, so start over cleanly.
    confirm.on('close', () => reset('the confirm channel closed'));
    confirm.on('return', (msg: { properties: { messageId?: unknown } }) => {
      if (typeof msg.properties.messageId === 'string') returned.add(msg.properties.messageId);
    });
    return { model, confirm, returned, signal: lost.signal, generation, reset };
  }

  private setState(state: ConnectionState, error?: string): void {
    if (state === this.stateValue) return;
    const change: ConnectionStateChange = { state, previous: this.stateValue, at: Date.now(), ...(error ? { error } : {}) };
    this.stateValue = state;
    for (const listener of [...this.listeners]) {
      try {
        listener(change);
      } catch (err) {
        this.deps.logger.error({ err }, 'bus state listener threw');
      }
    }
  }
}

/** Connections that emitted 'close': there is nothing left to close on them. */
const closedModels = new WeakSet<ChannelModel>();

/**
 * Closes a connection politely, but never waits more than `ms` for a broker that does not
 * answer, nor past `signal` (the connection's own `close()`): then the socket is destroyed (the
 * broker returns the unacknowledged messages). A connection that is already closed, or closes
 * by itself meanwhile, is done at once: amqplib never answers a close asked for while it was
 * tearing the connection down (a channel's 'close' fires first, e.g. after SIGSTOP/SIGCONT),
 * and the deadline's timer would otherwise hold a stopping process for `ms`.
 */
async function closeModel(model: ChannelModel, ms: number, signal?: AbortSignal): Promise<void> {
  if (closedModels.has(model)) return;
  let onClose: (() => void) | undefined;
  const ended = new Promise<void>((resolve) => model.once('close', (onClose = resolve)));
  try {
    await withDeadline(Promise.race([model.close(), ended]), ms, 'closing the connection', signal);
  } catch {
    // The broker did not answer in time, or the close was cut short: drop the socket below.
  } finally {
    if (onClose) model.off('close', onClose);
    destroySocket(model);
  }
}

/**
 * Destroys a connection's socket. amqplib only half-closes it (`end()`) and waits for the
 * broker's FIN; after a SIGSTOP the broker may have given the connection up without ever sending
 * one, and the half-open socket would keep a stopping process alive indefinitely. Nothing is
 * lost: after close-ok, or after amqplib declared the connection closed, no frame is read or
 * written any more. The socket is destroyed *with an error*, so that amqplib, if it still thinks
 * the connection open (a close cut short), tears it down too — a bare `destroy()` emits no
 * 'error' or 'end', and its heartbeat timers would run on until two heartbeats were missed.
 */
function destroySocket(model: ChannelModel): void {
  const stream = (model.connection as unknown as { stream?: { destroyed?: boolean; destroy(err?: Error): void } }).stream;
  if (stream && !stream.destroyed) stream.destroy(new Error('connection dropped by hearth'));
}
