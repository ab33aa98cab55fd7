import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CREATING_ACTIONS, cleanupActionOf, planCleanup, renderCleanupTable } from '../../../src/orphans/cleanup-actions.js';
import type { AttachStatus, OpRecord, ResourceRecord, SnapshotRecord, VolumeRecord } from '../../../src/state/records.js';
import { allows, machineFor, OP_KINDS, opKindSpec } from '../../../src/state/state-machine.js';

const T0 = 1_700_000_000_000;

function opOf(kind: OpRecord['kind']): OpRecord {
  const spec = opKindSpec(kind);
  return {
    type: spec.resource,
    id: 'r1',
    opId: 'op1',
    kind,
    status: spec.status,
    cluster: 'c@be',
    owner: { host: 'h@be', incarnation: 'h@be:1', aliveRevision: '3' },
    attempt: 2,
    params: {},
    createdAt: T0,
    updatedAt: T0,
    publishedAt: T0,
    revision: '9',
  };
}

function volume(status: string, previous: string | null, attach: AttachStatus): VolumeRecord {
  return {
    id: 'r1',
    name: null,
    description: null,
    size: 1,
    status: status as VolumeRecord['status'],
    previous_status: previous as VolumeRecord['previous_status'],
    project_id: 'p',
    user_id: null,
    cluster: 'c@be',
    host: 'h@be',
    attach_status: attach,
    availability_zone: 'nova',
    volume_type: '__DEFAULT__',
    migration_status: null,
    bootable: false,
    multiattach: false,
    metadata: {},
    created_at: T0,
    updated_at: null,
    revision: '8',
  };
}

function snapshot(status: string): SnapshotRecord {
  return {
    id: 'r1',
    volume_id: 'v',
    name: null,
    description: null,
    size: 1,
    status: status as SnapshotRecord['status'],
    previous_status: null,
    project_id: 'p',
    user_id: null,
    cluster: 'c@be',
    host: null,
    progress: '0%',
    metadata: {},
    created_at: T0,
    updated_at: null,
    revision: '8',
  };
}

const ATTACH: readonly AttachStatus[] = ['detached', 'attaching', 'attached', 'detaching'];

/** Every record a transitional status can come with: every previous status, every attach status. */
function recordsFor(kind: OpRecord['kind']): ResourceRecord[] {
  const spec = opKindSpec(kind);
  if (spec.resource === 'snapshot') return [snapshot(spec.status)];
  const previous = [null, ...machineFor('volume').statuses];
  return previous.flatMap((p) => ATTACH.map((a) => volume(spec.status, p, a)));
}

describe('cleanup actions (pure)', () => {
  it('follow the Cinder table: deleting → delete again, creating → error, extending → error_extending, snapshot creating → error, snapshot deleting → delete again', () => {
    const plan = (kind: OpRecord['kind']) => planCleanup(opOf(kind), recordsFor(kind)[0]!, 'error');
    expect(plan('delete_volume')).toEqual({ type: 'rerun' });
    expect(plan('create_volume')).toEqual({ type: 'final', set: { status: 'error' } });
    expect(plan('extend_volume')).toEqual({ type: 'final', set: { status: 'error_extending' } });
    expect(plan('create_snapshot')).toEqual({ type: 'final', set: { status: 'error' } });
    expect(plan('delete_snapshot')).toEqual({ type: 'rerun' });
  });

  it('orphans.creatingAction resume re-runs both creates; nothing else changes', () => {
    for (const spec of OP_KINDS) {
      const resumed = cleanupActionOf(spec.kind, 'resume');
      if (spec.kind === 'create_volume' || spec.kind === 'create_snapshot') expect(resumed).toEqual({ type: 'rerun' });
      else expect(resumed).toEqual(spec.cleanup);
      expect(cleanupActionOf(spec.kind, 'error')).toEqual(spec.cleanup);
    }
  });

  it('attaching goes back to its previous status when cleanup may go there, else available; attach_status follows', () => {
    const op = opOf('attach_volume');
    expect(planCleanup(op, volume('attaching', 'in-use', 'attaching'), 'error')).toEqual({ type: 'final', set: { status: 'in-use', attach_status: 'attached' } });
    expect(planCleanup(op, volume('attaching', 'available', 'attaching'), 'error')).toEqual({ type: 'final', set: { status: 'available', attach_status: 'detached' } });
    expect(planCleanup(op, volume('attaching', 'reserved', 'attaching'), 'error')).toEqual({ type: 'final', set: { status: 'reserved', attach_status: 'detached' } });
    expect(planCleanup(op, volume('attaching', null, 'detached'), 'error')).toEqual({ type: 'final', set: { status: 'available' } });
    expect(planCleanup(op, volume('attaching', 'attaching', 'attached'), 'error')).toEqual({ type: 'final', set: { status: 'available' } });
  });

  it('an attach or detach of the attachment API settles its attachment: reserved again after an attach, as it was after a detach', () => {
    const at = (id: string, attach_status: string, connected: boolean): Record<string, unknown> => ({
      id, instance_uuid: null, attach_status, attach_mode: 'null', connector: connected ? { host: 'h' } : null, connection_info: connected ? { driver_volume_type: 'local', data: {} } : null, attached_at: connected ? 1 : null, created_at: 1,
    });
    const attaching = { ...volume('attaching', 'reserved', 'attaching'), attachments: [at('a', 'attaching', false)] } as unknown as VolumeRecord;
    expect(planCleanup({ ...opOf('attach_volume'), params: { attachmentId: 'a', connector: { host: 'h' } } }, attaching, 'error')).toEqual({
      type: 'final',
      set: { status: 'reserved', attach_status: 'detached', previous_status: null, attachments: [{ ...at('a', 'reserved', false), connector: null }] },
    });
    const other = at('b', 'attached', true);
    const detaching = { ...volume('detaching', 'in-use', 'detaching'), attachments: [at('a', 'detaching', true), other] } as unknown as VolumeRecord;
    expect(planCleanup({ ...opOf('detach_volume'), params: { attachmentId: 'a', from: 'attaching' } }, detaching, 'error')).toEqual({
      type: 'final',
      set: { status: 'in-use', attach_status: 'attached', previous_status: null, attachments: [at('a', 'attaching', true), other] },
    });
  });

  it('detaching ends in-use and attached', () => {
    expect(planCleanup(opOf('detach_volume'), volume('detaching', 'in-use', 'detaching'), 'error')).toEqual({ type: 'final', set: { status: 'in-use', attach_status: 'attached' } });
  });

  it('for every op kind, every record and both options, the final status is one the state machine lets cleanup set, and never transitional', () => {
    let checked = 0;
    for (const spec of OP_KINDS) {
      for (const record of recordsFor(spec.kind)) {
        for (const creatingAction of CREATING_ACTIONS) {
          const plan = planCleanup(opOf(spec.kind), record, creatingAction);
          if (plan.type === 'rerun') {
            // A re-run ends through the worker's own edges, and cleanup's for a delete.
            expect(spec.cleanup.type === 'rerun' || creatingAction === 'resume').toBe(true);
            continue;
          }
          expect(allows(spec.resource, spec.status, plan.set.status, 'cleanup'), `${spec.kind} → ${plan.set.status}`).toBe(true);
          expect(machineFor(spec.resource).transitional.has(plan.set.status)).toBe(false);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('docs/cleanup.md carries the generated table', () => {
    const doc = readFileSync(new URL('../../../docs/cleanup.md', import.meta.url), 'utf8');
    const block = /<!-- BEGIN cleanup-actions \(generated\) -->\n([\s\S]*?)\n<!-- END cleanup-actions -->/.exec(doc)?.[1];
    expect(block, 'regenerate with: node --import tsx -e "import(\'./src/orphans/cleanup-actions.ts\').then(m => console.log(m.renderCleanupTable()))"').toBe(renderCleanupTable());
    for (const spec of OP_KINDS) expect(block).toContain(`| ${spec.resource} | ${spec.status} | ${spec.kind} |`);
  });
});
