import { Etcd3 } from 'etcd3';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { EtcdMessageStore } from '../../../src/messages/etcd-message-store.js';
import { useEtcd } from '../../support/context.js';
import { describeMessageStore } from '../../contract/message-store.contract.js';

describeMessageStore('etcd', async () => {
  const ctx = useEtcd();
  const client = new Etcd3({ hosts: [...ctx.endpoints] });
  return {
    store: new EtcdMessageStore({ client, keys: new KeyLayout(ctx.prefix) }),
    cleanup: async () => {
      client.close();
      await ctx.close();
    },
  };
});
