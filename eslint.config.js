// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'data/', 'coverage/', 'test/kafka/**/*.mjs', 'dashboards/generated/'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['eslint.config.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-unnecessary-condition': ['error', { allowConstantLoopConditions: true }],
      '@typescript-eslint/no-confusing-void-expression': 'off',
      'no-console': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  {
    // The pure core (classification, features, baselines, scoring) takes values and returns values: it imports
    // the contracts (schemas/), the error registry (services/shared/errors.ts), simple-statistics and itself, never
    // an adapter, a node: module or an I/O library. It also compiles without Node's types (services/core/tsconfig.json).
    files: ['services/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!\\.{1,2}/|simple-statistics$)',
              message: 'services/core is pure: of packages it may import only simple-statistics (no node:*, kafkajs, fastify, @clickhouse/*, chdb, …).',
            },
            {
              regex: '^(\\.\\./)+(api|auth|bus|detection|evaluation|killswitch|learner|processor|store|collectors|dashboards|scripts|test)/',
              message: 'services/core is pure: it may not import an adapter; pass values in instead.',
            },
            {
              regex: '^(\\.\\./)+(config|embedded|distributed|main|[a-z-]+-main)\\.ts$',
              message: 'services/core is pure: it may not import a composition root or the configuration.',
            },
            {
              regex: '^(\\.\\./)+shared/(?!errors\\.ts$)',
              message: 'services/core may use services/shared/errors.ts only.',
            },
          ],
        },
      ],
    },
  },
  {
    // Command-line scripts and tests talk to a person on the terminal.
    files: ['scripts/**', 'test/**'],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['eslint.config.js'],
    ...tseslint.configs.disableTypeChecked,
  },
);
