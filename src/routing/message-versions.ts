/**
 * Which message version a publisher writes, and which ones a consumer reads.
 *
 * The bus asks {@link MessageVersions.writeVersion} on every publish. The upgrade concern decides
 * it from the processes alive now (the highest version every live process of the cluster reads)
 * and hands its decision in through {@link MessageVersions.follow}; until it does, and in tests,
 * the bus writes the lowest version this build writes, which every release it may run beside
 * reads.
 */
import { PROTOCOL, type VersionRange } from '../protocol.js';

/** Picks the version of a message to `cluster` (or to one `host` of it). */
export type MessageVersionChooser = (cluster: string, host?: string) => number;

/** See the module doc. */
export class MessageVersions {
  private chooser: MessageVersionChooser | undefined;

  constructor(readonly reads: VersionRange = PROTOCOL.messages) {}

  /** From now on, versions come from `chooser` (clamped to what this build writes). */
  follow(chooser: MessageVersionChooser): void {
    this.chooser = chooser;
  }

  /** The version of the next message to `cluster` (or to its host `host`). */
  writeVersion(cluster: string, host?: string): number {
    const chosen = this.chooser?.(cluster, host) ?? this.reads.min;
    return Math.min(this.reads.max, Math.max(this.reads.min, chosen));
  }

  /** Every version this build reads, oldest first: a consumer takes each one's queues. */
  readVersions(): number[] {
    const out: number[] = [];
    for (let v = this.reads.min; v <= this.reads.max; v++) out.push(v);
    return out;
  }
}
