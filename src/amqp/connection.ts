/**
 * One RabbitMQ connection that keeps itself up, to whichever node of `amqp.url` answers: the
 * nodes are tried in turn ({@link BrokerRotation}), a failed attempt or a lost connection moves
 * to the next node at once, and hearth's retry policy (`lifecycle/retry.ts`, jittered and
 * capped by `amqp.reconnectMaxDelayMs`) waits only after every node failed in one round. Each
 * connection gets a fresh confirm channel and a setup hook (topology, consumers) run before it
 * is reported up.
 *
 * amqplib 2.x has a built-in `recovery` option, but it only reopens the connection to one URL:
 * channels, consumers and the state the rest of hearth reads (ready or not, since when, why, on
 * which node) are ours to rebuild and report either way.
 */
import { setMaxListeners } from 'node:events';
import { type ChannelModel, type ConfirmChannel, connect } from 'amqplib';
import { redactUrl } from '../config/redact.js';
import { AbortedError, BackendAccessError, BackendUnavailableError, ClosedError, describeError } from '../errors.js';
import { sleep, systemClock } from '../lifecycle/clock.js';
import { untilAborted, withDeadline } from '../lifecycle/deadline.js';
import { Backoff } from '../lifecycle/retry.js';
import type { Logger } from '../observability/logger.js';
import { explainAmqpFailure } from './access.js';
import { closeModel, markClosed } from './close.js';
import { type BrokerTarget, BrokerRotation, brokerTargets, startIndexFor } from './rotation.js';
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
  /** 1 for the node (`host:port` of `amqp.url`) the connection is on, 0 for the others. */
  readonly amqpNodeConnected: { set(labels: { node: string }, value: number): void };
  /** Connection attempts by node and result (`ok`, `failed`, `refused`). */
  readonly amqpConnectionAttempts: { inc(labels: { node: string; result: 'ok' | 'failed' | 'refused' }): void };
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
  /** The node it is on: `host:port` from `amqp.url`, never a credential. */
  readonly node: string;
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
 * Failure semantics: a lost connection (a node restarted, killed, paused by
 * `pause_minority`; a TCP reset; two missed heartbeats) moves the state to `down`, aborts the
 * session's signal, and starts connecting again — first to the next node of `amqp.url` — until
 * `close()`; credentials or topology errors are retried the same way (and logged), since
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
  private readonly targets: readonly BrokerTarget[];
  private readonly rotation: BrokerRotation;
  /** Attempts since the connection was last up (for the log level). */
  private attemptsSinceUp = 0;
  /** Epoch ms when the last connection was lost (for the log of the next one). */
  private lostAt: number | undefined;

  private readonly reconnect: Backoff;

  constructor(
    private readonly settings: AmqpConnectionSettings,
    private readonly deps: AmqpConnectionOptions,
  ) {
    this.reconnect = new Backoff({ initialDelayMs: Math.min(RECONNECT_MIN_DELAY_MS, settings.reconnectMaxDelayMs), maxDelayMs: settings.reconnectMaxDelayMs });
    // Every caller waiting for a session (a publish while the broker is away) listens on it; dozens at once are normal, not a leak.
    setMaxListeners(0, this.stop.signal);
    this.targets = brokerTargets(settings.url);
    if (this.targets.length === 0) throw new RangeError('amqp.url names no RabbitMQ node');
    this.rotation = new BrokerRotation(this.targets.length, startIndexFor(deps.name, this.targets.length));
    // Every node from the start, so that a dashboard sees which one is not used.
    for (const t of this.targets) deps.metrics.amqpNodeConnected.set({ node: t.node }, 0);
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

  /** The node the connection is on (`host:port`), '' while it is not up. */
  get node(): string {
    return this.current()?.node ?? '';
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
      const session = await this.connectToSomeNode();
      if (!session) return;
      await this.serve(session);
      this.rotation.lost();
    }
  }

  /**
   * Tries the nodes in turn until one connects; waits the back-off only after a whole round
   * failed. Undefined once `close()` was called (what an attempt still opens is closed).
   */
  private async connectToSomeNode(): Promise<AmqpSession | undefined> {
    while (!this.stop.signal.aborted) {
      const target = this.targets[this.rotation.next] as BrokerTarget;
      const attempt = ++this.attemptsSinceUp;
      const opening = this.open(target, attempt);
      try {
        const session = await untilAborted(opening, 'connecting to RabbitMQ', this.stop.signal);
        this.rotation.succeeded();
        this.deps.metrics.amqpConnectionAttempts.inc({ node: target.node, result: 'ok' });
        return session;
      } catch (err) {
        if (this.stop.signal.aborted) {
          // close() came while this attempt was under way: whatever it opens is closed.
          void opening.then((s) => closeModel(s.model, this.settings.connectTimeoutMs, this.stop.signal)).catch(() => undefined);
          return undefined;
        }
        const rounds = this.rotation.failed();
        this.attemptFailed(err, target, attempt, rounds);
        if (rounds > 0) await this.reconnect.wait(rounds, systemClock, this.stop.signal);
      }
    }
    return undefined;
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
    this.deps.metrics.amqpNodeConnected.set({ node: session.node }, 1);
    this.lastError = '';
    this.lastFailure = undefined;
    const downMs = this.lostAt === undefined ? undefined : Date.now() - this.lostAt;
    this.attemptsSinceUp = 0;
    this.lostAt = undefined;
    this.setState('up');
    this.deps.logger.info(
      { node: session.node, url: redactUrl(this.urlOf(session.node)), generation: session.generation, ...(downMs === undefined ? {} : { downMs }) },
      'connected to RabbitMQ',
    );
    await new Promise<void>((resolve) => session.signal.addEventListener('abort', () => resolve(), { once: true }));
    if (this.session === session) this.session = undefined;
    this.deps.metrics.amqpConnectionUp.set(0);
    this.deps.metrics.amqpNodeConnected.set({ node: session.node }, 0);
    if (this.stop.signal.aborted) return;
    this.lostAt = Date.now();
    this.lastError = redactUrl(describeError(session.signal.reason));
    const others = this.targets.length > 1 ? '; trying the next node' : '; reconnecting';
    this.deps.logger.warn({ node: session.node, err: session.signal.reason as unknown }, `lost the RabbitMQ connection${others}`);
    this.setState('down', this.lastError);
  }

  /** Logs and counts a failed attempt; `rounds` > 0 when it ended a round (a wait follows). */
  private attemptFailed(error: unknown, target: BrokerTarget, attempt: number, rounds: number): void {
    this.lastError = `${target.node}: ${redactUrl(describeError(error))}`;
    this.lastFailure = error instanceof Error ? error : new Error(String(error));
    // A refusal will not go away by waiting: say so louder than an outage.
    const refused = error instanceof BackendAccessError;
    this.deps.metrics.amqpConnectionAttempts.inc({ node: target.node, result: refused ? 'refused' : 'failed' });
    // Each node is named once per outage; then every tenth round.
    const n = this.targets.length;
    const loud = attempt <= n || (rounds > 0 && rounds % 10 === 0);
    const level = loud ? (refused ? 'error' : 'warn') : 'debug';
    const reason = refused ? { reason: error.reason } : {};
    const what = rounds > 0 ? (n > 1 ? 'cannot connect to any RabbitMQ node; retrying' : 'cannot connect to RabbitMQ; retrying') : 'cannot connect to this RabbitMQ node; trying the next';
    this.deps.logger[level]({ attempt, node: target.node, err: error, ...reason, url: redactUrl(target.url) }, what);
    if (this.stateValue === 'up') this.setState('down', this.lastError);
  }

  private urlOf(node: string): string {
    return this.targets.find((t) => t.node === node)?.url ?? '';
  }

  /** One connection attempt to `target`: connect, confirm channel, setup. Errors become retryable ones. */
  private async open(target: BrokerTarget, attempt: number): Promise<AmqpSession> {
    let model: ChannelModel | undefined;
    let session: AmqpSession | undefined;
    const settings = { ...this.settings, url: target.url };
    try {
      model = await connect(withHeartbeat(target.url, settings.heartbeatSeconds), await socketOptionsFor(settings, this.deps.name));
      session = await this.createSession(model, target);
      // Bounded: right after a broker restart, a consume on a quorum queue that is still
      // recovering was seen to block its channel (and the deliveries already sent to it).
      await withDeadline(this.deps.setup(session), settings.connectTimeoutMs, 'declaring the topology and consumers', this.stop.signal);
      return session;
    } catch (err) {
      // Abort the session first: a setup that is still running must see it is dead.
      session?.reset('connection setup failed');
      if (model) await closeModel(model, settings.connectTimeoutMs, this.stop.signal);
      const explained = { url: target.url, prefix: settings.prefix ?? '', certFile: settings.certFile, passwordFile: settings.passwordFile ?? '' };
      throw (
        explainAmqpFailure(err, explained) ??
        new BackendUnavailableError('amqp', `RabbitMQ connection attempt ${attempt} to ${target.node} failed: ${redactUrl(describeError(err))}`, { cause: err })
      );
    }
  }

  private async createSession(model: ChannelModel, target: BrokerTarget): Promise<AmqpSession> {
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
      markClosed(model);
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
    return { model, confirm, returned, signal: lost.signal, generation, node: target.node, reset };
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

