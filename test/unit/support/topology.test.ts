import { afterEach, describe, expect, it, vi } from 'vitest';
import { acquireEtcdCluster, acquireRabbitCluster } from '../../support/topology.js';

// External clusters named in the environment are used as they are, and a test that would kill
// or partition their members is told why it cannot.
describe('the production topology from the environment', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('takes etcd endpoints from HEARTH_TEST_ETCD_CLUSTER_ENDPOINTS and refuses local faults on them', async () => {
    vi.stubEnv('HEARTH_TEST_ETCD_CLUSTER_ENDPOINTS', 'http://10.0.0.1:2379, http://10.0.0.2:2379,,http://10.0.0.3:2379');
    const etcd = await acquireEtcdCluster();
    expect(etcd.source).toBe('environment');
    expect(etcd.endpoints).toEqual(['http://10.0.0.1:2379', 'http://10.0.0.2:2379', 'http://10.0.0.3:2379']);
    expect(() => etcd.local()).toThrow(/HEARTH_TEST_ETCD_CLUSTER_ENDPOINTS/);
    await etcd.stop();
  });

  it('takes AMQP URLs from HEARTH_TEST_AMQP_CLUSTER_URLS and refuses local faults on them', async () => {
    vi.stubEnv('HEARTH_TEST_AMQP_CLUSTER_URLS', 'amqp://a:5672,amqp://b:5672,amqp://c:5672');
    const rabbit = await acquireRabbitCluster();
    expect(rabbit.source).toBe('environment');
    expect(rabbit.urls).toEqual(['amqp://a:5672', 'amqp://b:5672', 'amqp://c:5672']);
    expect(() => rabbit.local()).toThrow(/HEARTH_TEST_AMQP_CLUSTER_URLS/);
    await rabbit.stop();
  });
});
