// The `backendHealth.*` and `alerts.*` options (docs/operations.md): the storage backend's health
// checks and the thresholds of the shipped alerts. Part of the configuration tree in schema.ts.
import { opt, type SpecTree } from './option.js';

/** The `backendHealth` section of {@link configSpec}. */
export const backendHealthSpec = {
  checkIntervalMs: opt.int({
    default: 10_000,
    min: 100,
    max: 600_000,
    unit: 'ms',
    doc: 'How often a worker checks its backend (the file driver: the cluster marker, a write probe, free space) and reports its capacity; a worker whose check fails takes no new jobs, and os-services shows backend_state down within about this long.',
  }),
  probeTimeoutMs: opt.int({
    default: 5_000,
    min: 100,
    max: 600_000,
    unit: 'ms',
    doc: 'Longest a backend probe may take; one that takes longer is killed and the backend is down until a probe passes again (at most one probe runs at a time).',
  }),
  minFreeBytes: opt.int({
    default: 1_048_576,
    min: 0,
    unit: 'bytes',
    doc: 'Free space below which the backend counts as full, and down.',
  }),
} satisfies SpecTree;

/** The `alerts` section of {@link configSpec}. */
export const alertsSpec = {
  operationStuckMs: opt.int({
    default: 3_600_000,
    min: 60_000,
    unit: 'ms',
    doc: 'HearthOperationStuck fires for an unfinished operation older than this (exported as hearth_operation_stuck_threshold_seconds for the alert rule).',
  }),
  backendNearlyFullPercent: opt.number({
    default: 90,
    min: 1,
    max: 100,
    unit: 'percent',
    doc: 'HearthBackendNearlyFull fires when this share of the pool is used (exported as hearth_backend_nearly_full_threshold_ratio for the alert rule).',
  }),
} satisfies SpecTree;
