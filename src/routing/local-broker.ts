/**
 * An in-process broker with the semantics hearth relies on from RabbitMQ's quorum queues:
 * named queues of encoded messages, competing consumers with a prefetch window served round
 * robin, requeue to the head with a delivery count, a bounded dead-letter list, and fanout
 * notices per cluster. One per process; every `LocalJobBus` of the process shares it.
 */
import { randomUUID } from 'node:crypto';
import type { DeadLetter } from './job-bus.js';
import type { Notice } from './job-message.js';

/** One message in a local queue. */
export interface LocalMessage {
  readonly id: string;
  readonly content: Buffer;
  /** Times it was handed back (a quorum queue's `x-delivery-count`). */
  returns: number;
}

/** A consumer attached to a {@link LocalQueue}. */
export interface LocalConsumer {
  readonly prefetch: number;
  /** Deliveries given to it and not settled. */
  unacked: number;
  deliver(message: LocalMessage): void;
}

/** A queue: FIFO, with handed-back messages going to the head (as quorum queues do). */
export class LocalQueue {
  private readonly messages: LocalMessage[] = [];
  private consumers: LocalConsumer[] = [];
  private next = 0;
  private scheduled = false;

  constructor(readonly name: string) {}

  /** Messages waiting (not delivered). */
  get depth(): number {
    return this.messages.length;
  }

  enqueue(content: Buffer): void {
    this.messages.push({ id: randomUUID(), content, returns: 0 });
    this.schedule();
  }

  addConsumer(consumer: LocalConsumer): void {
    this.consumers.push(consumer);
    this.schedule();
  }

  removeConsumer(consumer: LocalConsumer): void {
    this.consumers = this.consumers.filter((c) => c !== consumer);
  }

  /** The consumer is done with the message (ack, drop, dead-letter). */
  settle(consumer: LocalConsumer): void {
    consumer.unacked--;
    this.schedule();
  }

  /** The consumer hands the message back: it goes to the head, one delivery more. */
  requeue(consumer: LocalConsumer, message: LocalMessage): void {
    consumer.unacked--;
    message.returns++;
    this.messages.unshift(message);
    this.schedule();
  }

  // Deliver on a later tick, never inside the publisher's or handler's call stack.
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.messages.length > 0) {
      const consumer = this.pickConsumer();
      if (!consumer) return;
      const message = this.messages.shift() as LocalMessage;
      consumer.unacked++;
      consumer.deliver(message);
    }
  }

  private pickConsumer(): LocalConsumer | undefined {
    for (let i = 0; i < this.consumers.length; i++) {
      const index = (this.next + i) % this.consumers.length;
      const consumer = this.consumers[index] as LocalConsumer;
      if (consumer.unacked < consumer.prefetch) {
        this.next = index + 1;
        return consumer;
      }
    }
    return undefined;
  }
}

/** See the module doc. */
export class LocalBroker {
  private readonly queues = new Map<string, LocalQueue>();
  private readonly dead: DeadLetter[] = [];
  private readonly notices = new Map<string, Set<(notice: Notice) => void>>();

  /** @param maxDeadLetters oldest dead letters beyond this many are forgotten. */
  constructor(private readonly maxDeadLetters = 10_000) {}

  /** The queue named `name`, declaring it when `declare` is set. */
  queue(name: string, declare: boolean): LocalQueue | undefined {
    let queue = this.queues.get(name);
    if (!queue && declare) {
      queue = new LocalQueue(name);
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** Puts raw bytes on a queue, as a publisher outside hearth could (tests, tools). */
  inject(queueName: string, content: Buffer): void {
    (this.queue(queueName, true) as LocalQueue).enqueue(content);
  }

  addDeadLetter(letter: DeadLetter): void {
    this.dead.push(letter);
    if (this.dead.length > this.maxDeadLetters) this.dead.shift();
  }

  deadLetters(limit: number): DeadLetter[] {
    return this.dead.slice(0, limit);
  }

  /** Registers a notice listener for `cluster`; returns a function that removes it. */
  listen(cluster: string, listener: (notice: Notice) => void): () => void {
    const set = this.notices.get(cluster) ?? new Set();
    set.add(listener);
    this.notices.set(cluster, set);
    return () => set.delete(listener);
  }

  /** Delivers a notice to every listener of its cluster, each on a later tick. */
  broadcast(notice: Notice): void {
    for (const listener of this.notices.get(notice.cluster) ?? []) setImmediate(() => listener(notice));
  }
}
