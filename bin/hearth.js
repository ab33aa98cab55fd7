#!/usr/bin/env node
// The package's command: load the compiled CLI. `make build` (tsc) produces dist/.
import { main } from '../dist/main.js';

process.exitCode = await main(process.argv.slice(2));
