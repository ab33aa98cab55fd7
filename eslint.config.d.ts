// Types of eslint.config.js for the tests that run its rules (test/unit/architecture).
import type { Linter } from 'eslint';

declare const config: Linter.Config[];
export default config;
