// A member in a child process that drives the fake driver through whole volume lives and
// journals every call to a shared file. Settings come from the environment:
//   HEARTH_TEST_JOURNAL  the shared journal file
//   HEARTH_TEST_MEMBER   this member's host id
//   HEARTH_TEST_VOLUMES  comma-separated volume ids to run through create → extend →
//                        snapshot → delete snapshot → delete
//   HEARTH_TEST_LATENCY_MS, HEARTH_TEST_PARALLEL  latency per call; volumes run at once
import { FakeVolumeDriver } from '../../../src/drivers/fake-volume-driver.js';
import type { DriverContext } from '../../../src/drivers/volume-driver.js';

const env = process.env;
const member = env.HEARTH_TEST_MEMBER ?? 'child@be';
const volumes = (env.HEARTH_TEST_VOLUMES ?? '').split(',').filter(Boolean);
const parallel = Number(env.HEARTH_TEST_PARALLEL ?? '4');
const driver = await FakeVolumeDriver.open({ journalPath: env.HEARTH_TEST_JOURNAL ?? '', latencyMs: Number(env.HEARTH_TEST_LATENCY_MS ?? '0') });
const signal = new AbortController().signal;
const ctx = (volume: string, step: string): DriverContext => ({ signal, member, opId: `${member}-${volume}-${step}` });

async function life(volume: string): Promise<void> {
  await driver.createVolume({ id: volume, sizeGiB: 1 }, ctx(volume, 'create'));
  await driver.extendVolume({ id: volume }, 2, ctx(volume, 'extend'));
  await driver.createSnapshot({ id: `${volume}-snap`, volumeId: volume }, ctx(volume, 'snap'));
  await driver.deleteSnapshot({ id: `${volume}-snap`, volumeId: volume }, ctx(volume, 'unsnap'));
  await driver.deleteVolume({ id: volume }, ctx(volume, 'delete'));
}

const queue = [...volumes];
await Promise.all(
  Array.from({ length: parallel }, async () => {
    for (let v = queue.shift(); v !== undefined; v = queue.shift()) await life(v);
  }),
);
await driver.close();
console.log(`done ${member}`);
