// The `orphans.*` and `upgrade.*` options (docs/orphans.md, docs/upgrades.md): how orphaned
// operations are cleaned up and how the data migration runs. Part of the configuration tree in
// schema.ts.
import { opt, type SpecTree } from './option.js';

/** The `orphans` section of {@link configSpec}. */
export const orphansSpec = {
  autoCleanup: opt.bool({
    default: false,
    doc: 'Clean up orphaned operations automatically (a live member of their cluster takes them over once they are older than orphans.graceMs). Off: an operator runs work-cleanup, as in Cinder.',
  }),
  graceMs: opt.int({
    default: 60_000,
    min: 0,
    unit: 'ms',
    doc: 'Automatic cleanup waits this long after an owner died (at least leaseTtlMs, so a restarted host can clean its own first).',
  }),
  sweepIntervalMs: opt.int({
    default: 15_000,
    min: 100,
    unit: 'ms',
    doc: 'Period of the backstop sweep that looks for orphans whatever the membership watch said.',
  }),
  creatingAction: opt.enum(['error', 'resume'] as const, {
    default: 'error',
    doc: 'What cleaning up an orphaned create does: mark the volume or snapshot error (Cinder), or re-run the create.',
  }),
} satisfies SpecTree;

/** The `upgrade` section of {@link configSpec}. */
export const upgradeSpec = {
  maxMixedVersionsMs: opt.int({
    default: 3_600_000,
    min: 60_000,
    unit: 'ms',
    doc: 'How long the live processes of a cluster may run more than one hearth release before the HearthMixedVersions alert fires (exported as hearth_upgrade_mixed_versions_allowed_seconds). A rolling upgrade takes minutes; a cluster still mixed after this was left half-upgraded.',
  }),
  migrationBatchSize: opt.int({
    default: 100,
    min: 1,
    max: 10_000,
    unit: 'count',
    doc: 'Records the data migration after `hearth upgrade finalize` rewrites per batch (each with its own compare-and-swap; progress is saved after every batch).',
  }),
} satisfies SpecTree;
