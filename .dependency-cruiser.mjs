// The boundary check run by `make lint` (npx depcruise src): the layering in
// scripts/architecture.mjs, adapters only from the composition root, no cycles.
import { ADAPTER_FILE, COMPOSITION_ROOT, MODULES, modulePath } from './scripts/architecture.mjs';

const names = Object.keys(MODULES);
const layering = names
  .filter((name) => MODULES[name].may !== '*')
  .map((name) => ({
    name: `layering:${name}`,
    comment: `${name} may import only: ${[...MODULES[name].may].join(', ') || 'nothing of hearth'}`,
    severity: 'error',
    from: { path: `^${modulePath(name)}` },
    to: { path: '^src/', pathNot: `^(${[name, ...MODULES[name].may].map(modulePath).join('|')})` },
  }));

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    ...layering,
    {
      name: 'composition:nothing-imports-the-root',
      comment: 'only the process entry and the CLI start the app; nothing else imports the composition root',
      severity: 'error',
      from: { path: '^src/', pathNot: `^(${['composition', 'app', 'cli'].map(modulePath).join('|')})` },
      to: { path: `^(${COMPOSITION_ROOT.map(modulePath).join('|')})` },
    },
    {
      name: 'adapters-only-from-the-composition-root',
      comment: "a concern never imports another concern's adapter: it receives ports; composition/ picks adapters",
      severity: 'error',
      from: { path: '^src/([^/]+)/', pathNot: `^(${COMPOSITION_ROOT.map(modulePath).join('|')})` },
      to: { path: ADAPTER_FILE, pathNot: '^src/$1/' },
    },
    {
      name: 'no-cycles',
      comment: 'modules form a directed acyclic graph',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'etcd3-behind-its-boundary',
      comment: 'each client library is used only by its client layer and its adapters (pino: only the logger; better-sqlite3: only the SQLite store)',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(etcd/|[^/]+/etcd-[^/]+\\.ts$)' },
      to: { path: 'node_modules/etcd3/' },
    },
    {
      name: 'amqplib-behind-its-boundary',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(amqp/|[^/]+/amqp-[^/]+\\.ts$)' },
      to: { path: 'node_modules/amqplib/' },
    },
    {
      name: 'pino-only-in-the-logger',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/observability/logger\\.ts$' },
      to: { path: 'node_modules/pino/' },
    },
    {
      name: 'sqlite-only-in-its-adapter',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/[^/]+/sqlite-[^/]+\\.ts$' },
      to: { path: 'node_modules/better-sqlite3/' },
    },
    {
      name: 'not-to-tests',
      comment: 'production code never imports test code',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^test/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|test)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js'] },
  },
};
