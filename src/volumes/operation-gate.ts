import { CoordinatorError } from '../errors.js';
import type { OpKind } from '../state/state-machine.js';

/**
 * The OperationGate port: asked before the API records an operation. During a rolling upgrade
 * an operation that only the newer release can run is accepted only once every live worker of
 * the cluster runs it (the skew policy, docs/upgrades.md); the upgrade concern implements it
 * from the live processes.
 */
export interface OperationGate {
  /** Why `cluster` cannot take an operation of `kind` now; undefined when it can. */
  refuses(cluster: string, kind: OpKind): string | undefined;
}

/** Every operation is accepted (single node, tests). */
export const OPEN_GATE: OperationGate = { refuses: () => undefined };

/** Cinder's `UnavailableDuringUpgrade` (HTTP 400): nothing was recorded. */
export class UnavailableDuringUpgradeError extends CoordinatorError {
  readonly kind: OpKind;

  constructor(kind: OpKind, reason: string) {
    super('UNAVAILABLE_DURING_UPGRADE', `Cannot ${kind.replaceAll('_', ' ')} during upgrade: ${reason}.`);
    this.kind = kind;
  }
}
