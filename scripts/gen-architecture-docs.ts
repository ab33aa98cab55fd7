// Writes the module table of docs/architecture.md from the layering in scripts/architecture.mjs
// (the same data the dependency check enforces). Run after changing a module's imports:
//
//   node --import tsx scripts/gen-architecture-docs.ts
//
// test/unit/architecture/boundaries.test.ts fails when the committed table is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MODULES } from './architecture.mjs';

/** The page, relative to the repository root. */
export const ARCHITECTURE_DOCS_PATH = 'docs/architecture.md';
export const BEGIN = '<!-- modules: generated from scripts/architecture.mjs by scripts/gen-architecture-docs.ts; do not edit by hand -->';
export const END = '<!-- end of generated modules -->';

const ROOT_FILES = new Set(['errors', 'identity', 'fence', 'version', 'app', 'main', 'protocol']);

function label(name: string): string {
  return ROOT_FILES.has(name) ? `\`${name}.ts\`` : `\`${name}/\``;
}

/** The generated table, between its markers. */
export function moduleTable(): string {
  const rows = Object.entries(MODULES).map(([name, m]) => {
    const may = m.may === '*' ? 'any module (it picks the adapters)' : m.may.length === 0 ? '—' : m.may.map(label).join(', ');
    return `| ${label(name)} | ${m.doc} | ${may} |`;
  });
  return [BEGIN, '', '| module | what it is | may import |', '| --- | --- | --- |', ...rows, '', END].join('\n');
}

/** The page with its table regenerated. */
export function renderArchitectureDocs(page: string): string {
  const start = page.indexOf(BEGIN);
  const end = page.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${ARCHITECTURE_DOCS_PATH} has no generated module table (markers missing)`);
  return page.slice(0, start) + moduleTable() + page.slice(end + END.length);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const path = fileURLToPath(new URL(`../${ARCHITECTURE_DOCS_PATH}`, import.meta.url));
  writeFileSync(path, renderArchitectureDocs(readFileSync(path, 'utf8')));
  console.log(`wrote ${ARCHITECTURE_DOCS_PATH}`);
}
