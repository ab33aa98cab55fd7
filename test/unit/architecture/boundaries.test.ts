// The boundaries docs/architecture.md describes are enforced, not just written down: the
// dependency check passes on src/ and fails on each kind of violation; the lint rules for
// logging errors and reading the environment fire; the module table in the docs is the one
// generated from the same rules.
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { cruise, type ICruiseResult } from 'dependency-cruiser';
import { Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import eslintConfig from '../../../eslint.config.js';
import { describe, expect, it } from 'vitest';
import config from '../../../.dependency-cruiser.mjs';
import { ARCHITECTURE_DOCS_PATH, renderArchitectureDocs } from '../../../scripts/gen-architecture-docs.js';

const ROOT = join(import.meta.dirname, '../../..');

async function violationsIn(baseDir: string): Promise<string[]> {
  const { output } = await cruise(['src'], { ruleSet: { forbidden: config.forbidden ?? [] }, validate: true, tsPreCompilationDeps: true, baseDir, exclude: { path: '^(dist|test)/' } }, { extensions: ['.ts', '.js'] });
  const result = output as ICruiseResult;
  return result.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`);
}

/** A throwaway tree of TypeScript files (path → source). */
async function tree(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-boundaries-'));
  for (const [path, source] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), source);
  }
  return dir;
}

describe('the dependency check', () => {
  it('passes on src/', async () => {
    expect(await violationsIn(ROOT)).toEqual([]);
  }, 60_000);

  it('refuses an import against the layering', async () => {
    const dir = await tree({ 'src/locks/a.ts': "import { b } from '../worker/b.js';\nexport const a = b;\n", 'src/worker/b.ts': 'export const b = 1;\n' });
    expect(await violationsIn(dir)).toEqual(['layering:locks: src/locks/a.ts → src/worker/b.ts']);
  });

  it("refuses another concern's adapter outside the composition root, and allows it inside", async () => {
    const dir = await tree({
      'src/worker/a.ts': "import { S } from '../state/etcd-state-store.js';\nexport const a = S;\n",
      'src/composition/c.ts': "import { S } from '../state/etcd-state-store.js';\nexport const c = S;\n",
      'src/state/etcd-state-store.ts': 'export const S = 1;\n',
    });
    expect(await violationsIn(dir)).toEqual(['adapters-only-from-the-composition-root: src/worker/a.ts → src/state/etcd-state-store.ts']);
  });

  it('refuses a cycle, even through type-only imports', async () => {
    const dir = await tree({
      'src/state/a.ts': "import type { B } from './b.js';\nexport type A = { b?: B };\n",
      'src/state/b.ts': "import type { A } from './a.js';\nexport type B = { a?: A };\n",
    });
    expect((await violationsIn(dir)).filter((v) => v.startsWith('no-cycles:')).length).toBeGreaterThan(0);
  });
});

describe('the lint rules', () => {
  // The project's own config blocks for these two rules, run without type information (the
  // sample files are not part of the TypeScript project).
  const ruleBlocks = eslintConfig.filter((block) => block.rules?.['no-restricted-syntax'] !== undefined || block.rules?.['no-restricted-properties'] !== undefined);
  const lint = async (path: string, source: string): Promise<string[]> => {
    const linter = new Linter({ configType: 'flat', cwd: ROOT });
    const messages = linter.verify(source, [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } }, ...ruleBlocks], { filename: join(ROOT, path) });
    return messages.map((m) => m.message).sort();
  };

  it('log an error one way: the object under err', async () => {
    const source = [
      "import type { Logger } from '../observability/logger.js';",
      "import { messageOf } from '../errors.js';",
      'export function f(logger: Logger, err: Error): void {',
      "  logger.warn({ err }, 'fine');",
      "  logger.warn({ err: messageOf(err) }, 'a string loses the stack');",
      "  logger.warn({ reason: err.message }, 'so does this');",
      "  logger.warn({ error: err }, 'wrong key');",
      '}',
    ].join('\n');
    expect(await lint('src/worker/example.ts', source)).toEqual(
      [
        'log the error object itself: { err }',
        'log the error object under err, not a string made of it',
        'log the error object under err, not its message',
        "errors go under err (pino's serializer key)",
      ].sort(),
    );
  }, 60_000);

  it('read the environment only in config/', async () => {
    const source = 'export const home = process.env.HOME;\n';
    expect(await lint('src/worker/example.ts', source)).toEqual(["'process.env' is restricted from being used. only config/ reads the environment (config/environment.ts)"]);
    expect(await lint('src/config/example.ts', source)).toEqual([]);
  }, 60_000);
});

describe('docs/architecture.md', () => {
  it('shows the module table generated from the rules the check enforces (regenerate: make generate)', async () => {
    const page = await readFile(join(ROOT, ARCHITECTURE_DOCS_PATH), 'utf8');
    expect(page).toBe(renderArchitectureDocs(page));
  });
});
