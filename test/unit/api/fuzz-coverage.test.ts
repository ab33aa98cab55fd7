// The API fuzzer (test/fuzz) must reach every route the daemon serves: a route added without a
// fuzz entry fails here, so the fuzzer's promise — never a 5xx, a Cinder fault on every 4xx,
// nothing written on a 4xx — keeps covering the whole API.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ApiServer } from '../../../src/api/server.js';
import { apiRoutes } from '../../../src/composition/api.js';
import type { Backends } from '../../../src/composition/backends.js';
import type { OrphanDetection } from '../../../src/composition/orphans.js';
import type { UpgradeParts } from '../../../src/composition/upgrade.js';
import { loadConfig } from '../../../src/config/load.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { Closer } from '../../../src/lifecycle/closer.js';
import { DEFAULT_ETCD_RETRY } from '../../../src/lifecycle/retry.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { ROUTES } from '../../fuzz/requests.js';

/** Every route the API serves, as `METHOD url`; built on stand-in backends (registration calls none of them). */
async function servedRoutes(): Promise<string[]> {
  const config = await loadConfig({ env: {}, secretFiles: 'skip' });
  const ctx = { config, clock: systemClock, registry: new Registry(), logger: silentLogger(), closer: new Closer(silentLogger()), retry: DEFAULT_ETCD_RETRY };
  const server = new ApiServer({ logger: silentLogger(), maxBodyBytes: 65_536 });
  const served: string[] = [];
  server.app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) if (method !== 'HEAD' && method !== 'OPTIONS') served.push(`${method} ${route.url}`);
  });
  for (const routes of apiRoutes(ctx, {} as Backends, { detector: {} } as OrphanDetection, {} as UpgradeParts, '0.0.0')) server.register(routes);
  await server.app.ready();
  await server.close();
  return served;
}

describe('the API fuzzer', () => {
  it('has an entry for every route the API serves', async () => {
    const fuzzed = new Set(ROUTES.flatMap((r) => r.routes.map((url) => `${r.method} ${url}`)));
    const served = await servedRoutes();
    expect(served.length).toBeGreaterThan(15);
    expect(served.filter((route) => !fuzzed.has(route))).toEqual([]);
  });
});
