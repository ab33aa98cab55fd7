/**
 * Which RabbitMQ node to try next: the pure core of the connection loop. Pure: no I/O, no time.
 *
 * The nodes are tried in turn. A failed attempt moves to the next node at once; only when every
 * node failed in one round does the loop wait (its back-off counts rounds, not attempts). A lost
 * connection starts a new round at the node after the one it was on, so a dead node is tried
 * last. With one node this is the plain reconnect loop: a wait after every failure.
 */
import { nodeOf, splitUrlList } from '../config/url-lists.js';

/** One node of the list: its URL (with credentials) and a label that holds none. */
export interface BrokerTarget {
  /** Position in `amqp.url`, from 0. */
  readonly index: number;
  readonly url: string;
  /** `host:port`, for logs and the `node` label of metrics. */
  readonly node: string;
}

/** The nodes of `amqp.url`, in order. */
export function brokerTargets(urlList: string): BrokerTarget[] {
  return splitUrlList(urlList).map((url, index) => ({ index, url, node: nodeOf(url) || `url${index}` }));
}

/**
 * Where a process starts: the same node on every start of one host, spread over the nodes
 * across hosts (FNV-1a of `key`, e.g. the connection name), so that the members of a cluster
 * do not all sit on the first URL and one node's death interrupts only its share of them.
 */
export function startIndexFor(key: string, count: number): number {
  if (count <= 1) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % count;
}

/** See the module doc. */
export class BrokerRotation {
  private cursor: number;
  private connected: number | undefined;
  private failedInRound = 0;
  private roundsFailed = 0;

  constructor(
    readonly size: number,
    start = 0,
  ) {
    if (!(size >= 1)) throw new RangeError(`a rotation needs at least one node, got ${size}`);
    this.cursor = ((start % size) + size) % size;
  }

  /** The node the next attempt goes to. */
  get next(): number {
    return this.cursor;
  }

  /** Attempts that failed since the last connection or the last full round. */
  get failuresInRound(): number {
    return this.failedInRound;
  }

  /**
   * The attempt on {@link next} failed: moves on. Returns the number of rounds that failed in a
   * row when this failure completed a round (the loop waits `backoff(rounds)`), else 0 (try
   * the next node at once).
   */
  failed(): number {
    this.cursor = (this.cursor + 1) % this.size;
    this.failedInRound++;
    if (this.failedInRound < this.size) return 0;
    this.failedInRound = 0;
    return ++this.roundsFailed;
  }

  /** The attempt on {@link next} connected. */
  succeeded(): void {
    this.connected = this.cursor;
    this.failedInRound = 0;
    this.roundsFailed = 0;
  }

  /** The connection was lost: a new round starts at the node after it. */
  lost(): void {
    if (this.connected !== undefined) this.cursor = (this.connected + 1) % this.size;
    this.connected = undefined;
    this.failedInRound = 0;
  }
}
