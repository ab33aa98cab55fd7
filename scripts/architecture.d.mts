/** One top-level module of src/: what it is and which modules it may import ('*': any). */
export interface ModuleRule {
  readonly doc: string;
  readonly may: readonly string[] | '*';
}
export const MODULES: Readonly<Record<string, ModuleRule>>;
export const ADAPTER_FILE: string;
export const COMPOSITION_ROOT: readonly string[];
export function modulePath(name: string): string;
