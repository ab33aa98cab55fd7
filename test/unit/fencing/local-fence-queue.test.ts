import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalFenceQueue } from '../../../src/fencing/local-fence-queue.js';
import { VOLUME_BINARY } from '../../../src/identity.js';
import { LocalMembership } from '../../../src/membership/local-membership.js';
import { LocalRecordFile } from '../../../src/membership/local-store.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { describeFenceQueue } from '../../contract/fence-queue.contract.js';
import { TestSession } from '../../support/test-session.js';

// On a single node the fencers are this process's incarnations; clusters of one host each let
// the contract join two of them at once.
describeFenceQueue('single node (memory)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-fence-queue-'));
  const membership = new LocalMembership(await LocalRecordFile.open(join(dir, 'membership.json')), systemClock);
  return {
    queue: new LocalFenceQueue(() => Date.now()),
    membership,
    join: async (host) => {
      const session = TestSession.local(host);
      const member = await membership.join({ identity: { cluster: `${host.replace('@', '-')}@be`, host, zone: 'nova' }, binary: VOLUME_BINARY, version: '1', session });
      return { member, end: () => member.leave() };
    },
    close: () => membership.close(),
  };
});
