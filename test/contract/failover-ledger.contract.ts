import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OwnerRef } from '../../src/identity.js';
import type { FailoverLedger } from '../../src/orphans/failover-ledger.js';

/** What the contract needs from one adapter. */
export interface FailoverLedgerFixture {
  /** The ledger as one more process sees it (etcd: its own client; single node: the one ledger). */
  ledger(): Promise<FailoverLedger>;
  /** A live incarnation that takes work over (etcd: with a session lease). */
  taker(): Promise<OwnerRef>;
  close(): Promise<void>;
}

/** The FailoverLedger contract: each death is recorded first exactly once, whoever races for it. */
export function failoverLedgerContract(adapter: string, makeFixture: () => Promise<FailoverLedgerFixture>): void {
  describe(`FailoverLedger contract: ${adapter}`, () => {
    let fx: FailoverLedgerFixture;
    beforeEach(async () => {
      fx = await makeFixture();
    });
    afterEach(async () => {
      await fx.close();
    });

    it('several takers racing for one death: exactly one is first; later records are not', async () => {
      const ledgers = await Promise.all([fx.ledger(), fx.ledger(), fx.ledger()]);
      const takers = await Promise.all([fx.taker(), fx.taker(), fx.taker()]);
      const firsts = await Promise.all(ledgers.flatMap((l, i) => [l.first('dead@be:1', takers[i] as OwnerRef), l.first('dead@be:1', takers[i] as OwnerRef)]));
      expect(firsts.filter(Boolean)).toHaveLength(1);
      expect(await (ledgers[0]).first('dead@be:1', takers[0])).toBe(false);
    });

    it('deaths are independent: each is first once', async () => {
      const ledger = await fx.ledger();
      const taker = await fx.taker();
      expect(await ledger.first('dead@be:1', taker)).toBe(true);
      expect(await ledger.first('dead@be:2', taker)).toBe(true);
      expect(await ledger.first('other@be:1', taker)).toBe(true);
      expect(await ledger.first('dead@be:2', taker)).toBe(false);
    });
  });
}
