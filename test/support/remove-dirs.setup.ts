/**
 * A vitest setup file of the integration tests (vitest.config.ts): after each test file — after
 * its own afterAll hooks, since "after" hooks run in reverse order — removes the dirs of the
 * hearth processes it started, once they have exited (test-dirs.ts).
 */
import { afterAll } from 'vitest';
import { removeIdleDirs } from './test-dirs.js';

afterAll(() => removeIdleDirs());
