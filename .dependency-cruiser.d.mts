// Types of .dependency-cruiser.mjs for the test that runs its rules (test/unit/architecture).
import type { IConfiguration } from 'dependency-cruiser';

declare const config: IConfiguration;
export default config;
