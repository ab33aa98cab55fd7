import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterEach, describe, expect, it } from 'vitest';
import { EtcdCluster } from '../../support/etcd-cluster.js';
import { EtcdServer } from '../../support/etcd.js';
import { startHearth } from '../../support/hearth-process.js';
import { RabbitServer } from '../../support/rabbitmq.js';
import { makeTestDir, removeIdleDirs } from '../../support/test-dirs.js';

// The harness removes a server's temp dir when the server is stopped for good, keeps it across a
// restart, and keeps every dir with HEARTH_KEEP_TEST_DIRS=1 (test/support/test-dirs.ts).

const KEEP = 'HEARTH_KEEP_TEST_DIRS';

afterEach(() => {
  delete process.env[KEEP];
});

async function putGet(endpoints: string[], key: string, value?: string): Promise<string | null> {
  const client = new Etcd3({ hosts: endpoints });
  try {
    if (value !== undefined) await client.put(key).value(value);
    return await client.get(key).string();
  } finally {
    client.close();
  }
}

describe('an etcd member', () => {
  it('keeps its dir and data across a restart; stop() removes the dir, once (idempotent), and a restart after it is refused', async () => {
    const etcd = await EtcdServer.start();
    try {
      expect(await putGet(etcd.endpoints, '/dirs/k', 'v')).toBe('v');
      await etcd.restart();
      expect(existsSync(etcd.logPath)).toBe(true);
      expect(await putGet(etcd.endpoints, '/dirs/k')).toBe('v');
    } finally {
      await etcd.stop();
    }
    expect(existsSync(etcd.dataDir)).toBe(false);
    await etcd.stop();
    await expect(etcd.restart()).rejects.toThrow(/stopped for good/);
  });

  it('keeps its dir on stop() with HEARTH_KEEP_TEST_DIRS=1', async () => {
    process.env[KEEP] = '1';
    const etcd = await EtcdServer.start();
    await etcd.stop();
    try {
      expect(existsSync(etcd.logPath)).toBe(true);
    } finally {
      await rm(etcd.dataDir, { recursive: true, force: true });
    }
  });
});

describe('an etcd cluster', () => {
  it("keeps a member's data across the member's restart; the cluster's stop() removes the cluster dir", async () => {
    const cluster = await EtcdCluster.start({ members: 1, peerProxies: false });
    try {
      const member = cluster.member(0);
      expect(await member.put('/dirs/c', 'v')).toBeGreaterThan(0);
      await member.restart();
      expect(await member.get('/dirs/c', { serializable: true })).toBe('v');
    } finally {
      await cluster.stop();
    }
    expect(existsSync(cluster.dir)).toBe(false);
  });
});

describe('a RabbitMQ handle attached to a node another process started', () => {
  it("does not remove the node's dir on stop()", async () => {
    const dir = await makeTestDir('hearth-rabbit-attached-');
    try {
      await RabbitServer.attach({ dir, amqpPort: 1, distPort: 1, epmdPort: 1 }).stop();
      expect(existsSync(dir)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the data dir startHearth makes', () => {
  it('outlives the process for its log and a second process on it; removed once both have exited', async () => {
    const first = await startHearth({ name: 'dirs-first' });
    expect(await first.stop()).toEqual({ code: 0, signal: null });
    // Stopped, its log is still there to read (the dir goes at the end of the test file).
    expect(first.output()).toContain('"msg"');
    const second = await startHearth({ name: 'dirs-second', env: { HEARTH_DATA_DIR: first.dataDir } });
    try {
      await removeIdleDirs();
      expect(existsSync(first.dataDir)).toBe(true);
    } finally {
      await second.stop();
    }
    await removeIdleDirs();
    expect(existsSync(first.dataDir)).toBe(false);
  });

  it('is not removed when the caller made it', async () => {
    const dir = await makeTestDir('hearth-dirs-own-');
    try {
      const hearth = await startHearth({ name: 'dirs-own', env: { HEARTH_DATA_DIR: dir } });
      await hearth.stop();
      await removeIdleDirs();
      expect(existsSync(join(dir, 'dirs-own.log'))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('is kept with HEARTH_KEEP_TEST_DIRS=1', async () => {
    process.env[KEEP] = '1';
    const hearth = await startHearth({ name: 'dirs-kept' });
    await hearth.stop();
    await removeIdleDirs();
    try {
      expect(existsSync(hearth.dataDir)).toBe(true);
    } finally {
      await rm(hearth.dataDir, { recursive: true, force: true });
    }
  });
});
