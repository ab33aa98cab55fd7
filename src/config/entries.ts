import { flattenSpec, type OptionEntry } from './option.js';
import { configSpec } from './schema.js';

/** Every option, flattened: its path, environment name, flag, default and doc line. */
export const optionEntries: readonly OptionEntry[] = flattenSpec(configSpec);
