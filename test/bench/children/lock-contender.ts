// One contender process of the contended-lock benchmark (test/bench/suites/locks.ts).
// Usage: node --import tsx lock-contender.ts <hearth|gateway> <endpoint> <prefix> <lock name>
// Prints `ready` once connected. Then, for every `go <endAtEpochMs>` line on stdin, takes and
// releases the lock in a loop until then and prints one JSON line: [[acquiredAt, releasedAt], ...]
// (epoch ms, sub-millisecond resolution, comparable across processes on one machine). `exit`
// releases everything and ends the process.
import { createInterface } from 'node:readline';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { EtcdLockService } from '../../../src/locks/etcd-lock-service.js';
import { EtcdSession } from '../../../src/session/etcd-session.js';

const [mode, endpoint, prefix, name] = process.argv.slice(2) as [string, string, string, string];
const now = (): number => performance.timeOrigin + performance.now();

type Loop = (endAt: number) => Promise<[number, number][]>;

async function hearth(): Promise<{ loop: Loop; close: () => Promise<void> }> {
  const etcd = { endpoints: [endpoint], prefix, username: '', password: '', caFile: '', certFile: '', keyFile: '', callTimeoutMs: 5_000 };
  const client = createEtcdClient(etcd);
  const session = await EtcdSession.open({ client, host: `bench-${process.pid}@bench`, leaseTtlMs: 10_000, leaseMarginMs: 2_000, callTimeoutMs: 5_000 });
  const locks = new EtcdLockService({ client, keys: new KeyLayout(prefix), session, callTimeoutMs: 5_000 });
  return {
    loop: async (endAt) => {
      const spans: [number, number][] = [];
      while (now() < endAt) {
        const handle = await locks.acquire(name, { timeoutMs: 60_000 });
        const acquiredAt = now();
        spans.push([acquiredAt, now()]);
        await handle.release();
      }
      return spans;
    },
    close: async () => {
      await locks.close();
      await session.close();
      client.close();
    },
  };
}

/** etcd's own lock service through its JSON gateway: what `etcdctl lock` runs server-side. */
async function gateway(): Promise<{ loop: Loop; close: () => Promise<void> }> {
  const post = async (path: string, body: unknown): Promise<Record<string, string>> => {
    const res = await fetch(`${endpoint}${path}`, { method: 'POST', body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, string>;
  };
  const lease = (await post('/v3/lease/grant', { TTL: 60 })).ID as string;
  const lockName = Buffer.from(`${prefix}/locks/${name}`).toString('base64');
  return {
    loop: async (endAt) => {
      const spans: [number, number][] = [];
      while (now() < endAt) {
        const { key } = await post('/v3/lock/lock', { name: lockName, lease });
        const acquiredAt = now();
        spans.push([acquiredAt, now()]);
        await post('/v3/lock/unlock', { key });
      }
      return spans;
    },
    close: async () => {
      await post('/v3/lease/revoke', { ID: lease });
    },
  };
}

const contender = mode === 'gateway' ? await gateway() : await hearth();
process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const [word, endAt] = line.split(' ');
  if (word === 'exit') break;
  if (word !== 'go') continue;
  const spans = await contender.loop(Number(endAt));
  process.stdout.write(`${JSON.stringify(spans)}\n`);
}
lines.close();
await contender.close();
