import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startHearth } from '../../support/hearth-process.js';

describe('two hearth serve processes on one data dir', () => {
  it('the second exits 1 at once with DATA_DIR_LOCKED; the first keeps serving and frees the dir on exit', async () => {
    const first = await startHearth({ name: 'datadir-first' });
    try {
      const lockPath = join(first.dataDir, 'hearth.lock');
      expect(existsSync(lockPath)).toBe(true);
      const started = Date.now();
      const second = await startHearth({ name: 'datadir-second', env: { HEARTH_DATA_DIR: first.dataDir }, waitFor: 'none' });
      const exit = await second.process.waitForExit();
      const elapsed = Date.now() - started;
      expect(exit.code).toBe(1);
      expect(elapsed).toBeLessThan(15_000); // process start-up through tsx dominates; no lock wait
      expect(second.output()).toContain('DATA_DIR_LOCKED');
      expect(second.output()).toContain(`is in use by another hearth process (pid ${first.pid}`);
      expect((await fetch(`${first.opsUrl}/readyz`)).status).toBe(200);
      expect(existsSync(lockPath)).toBe(true);
      expect(await first.stop()).toEqual({ code: 0, signal: null });
      expect(existsSync(lockPath)).toBe(false);
      const third = await startHearth({ name: 'datadir-third', env: { HEARTH_DATA_DIR: first.dataDir } });
      expect(await third.stop()).toEqual({ code: 0, signal: null });
    } finally {
      await first.stop();
    }
  });
});
