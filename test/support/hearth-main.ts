// Runs the hearth CLI from source (through tsx), so process tests always run the current code.
import { main } from '../../src/main.js';

process.exitCode = await main(process.argv.slice(2));
