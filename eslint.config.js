// Type-aware lint: unawaited lease, lock and ack promises are the likeliest bug in hearth.
import eslint from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'var/**', 'deploy/**', 'bin/**', 'test/bench/results/**', 'scratch/**'] },
  eslint.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'max-lines': ['warn', { max: 400, skipBlankLines: true, skipComments: true }],
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'prom-client', importNames: ['register'], message: 'use the registry hearth passes in' }] },
      ],
    },
  },
  {
    // Only config/ reads the environment (docs/architecture.md).
    files: ['src/**/*.ts'],
    ignores: ['src/config/**'],
    rules: {
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'only config/ reads the environment (config/environment.ts)' }],
    },
  },
  {
    // One way to log an error: the error object under `err`, so pino's serializer keeps its
    // stack and cause and redacts URLs in them (docs/architecture.md).
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.property.name=/^(trace|debug|info|warn|error|fatal)$/] > ObjectExpression > Property[key.name='err'][value.type=/^(CallExpression|TemplateLiteral|Literal|ConditionalExpression)$/]:not([value.callee.name=/^from[A-Za-z]*Error$/])",
          message: 'log the error object itself: { err }',
        },
        {
          selector: "CallExpression[callee.property.name=/^(trace|debug|info|warn|error|fatal)$/] > ObjectExpression > Property[key.name=/^(err|error|reason|cause)$/][value.type='MemberExpression'][value.property.name='message']",
          message: 'log the error object under err, not its message',
        },
        {
          selector: "CallExpression[callee.property.name=/^(trace|debug|info|warn|error|fatal)$/] > ObjectExpression > Property[value.type='CallExpression'][value.callee.name=/^(messageOf|describeError)$/]",
          message: 'log the error object under err, not a string made of it',
        },
        {
          selector: "CallExpression[callee.property.name=/^(trace|debug|info|warn|error|fatal)$/] > ObjectExpression > Property[key.name='error']",
          message: 'errors go under err (pino\'s serializer key)',
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/unbound-method': 'off',
      'max-lines': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
