// The releases the upgrade tests run inside one build: release 1 as shipped (v0.1.0: messages
// and schema 1 only; the tree's own PROTOCOL has moved on) and a made-up release 2 that reads
// messages and schemas 1–2, with a schema step of its own, so the upgrade machinery is tested
// apart from the tree's real steps. (test/integration/upgrade/mixed-release.test.ts runs the
// real v0.1.0 build.)
import type { ProtocolSupport } from '../../../src/protocol.js';
import type { RecordBody, SchemaStep } from '../../../src/state/record-versions.js';

export const RELEASE_1: ProtocolSupport = { messages: { min: 1, max: 1 }, schema: { min: 1, max: 1 } };
export const RELEASE_2: ProtocolSupport = { messages: { min: 1, max: 2 }, schema: { min: 1, max: 2 } };

/** The made-up release 2's record change: volumes get `tier` (down: dropped). */
export const ADD_TIER: SchemaStep = {
  from: 1,
  doc: 'volumes get a tier',
  up: (body: RecordBody) => ({ ...body, tier: body.tier ?? 'standard' }),
  down: ({ tier: _tier, ...rest }: RecordBody) => rest,
};
