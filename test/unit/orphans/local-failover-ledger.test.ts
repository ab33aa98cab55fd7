import type { OwnerRef } from '../../../src/identity.js';
import { LocalFailoverLedger } from '../../../src/orphans/local-failover-ledger.js';
import { failoverLedgerContract } from '../../contract/failover-ledger.contract.js';

failoverLedgerContract('local (the single node\'s memory)', async () => {
  const ledger = new LocalFailoverLedger();
  let n = 0;
  return {
    ledger: async () => ledger,
    taker: async (): Promise<OwnerRef> => ({ host: 'node@be', incarnation: `node@be:${++n}`, aliveRevision: '0' }),
    close: async () => undefined,
  };
});
