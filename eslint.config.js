// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Who may import which I/O library: each adapter lives in one folder. A file may import none of `forbidden`.
 * Kafka: services/bus/. ClickHouse: services/store/ (and, until they move there, the kill switch's and the
 * tokens' stores). HTTP (fastify): services/api/, the OTLP receiver, the kill switch's routes and the HTTP helpers.
 */
const IO_LIBRARIES = {
  kafkajs: 'Kafka is reached through services/bus/ only.',
  chdb: 'the in-process ClickHouse engine is opened by services/store/ only.',
  '@clickhouse/client': 'ClickHouse is reached through services/store/ only.',
  fastify: 'HTTP servers live in services/api/ (and the OTLP receiver, the kill switch routes, services/shared/http.ts).',
};
function onlyIn(...allowed) {
  return {
    'no-restricted-imports': [
      'error',
      { paths: Object.entries(IO_LIBRARIES).filter(([name]) => !allowed.includes(name)).map(([name, message]) => ({ name, message })) },
    ],
  };
}

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
  { files: ['services/**/*.ts', 'collectors/**/*.ts', 'dashboards/**/*.ts', 'scripts/**/*.ts'], rules: onlyIn() },
  { files: ['services/bus/**/*.ts'], rules: onlyIn('kafkajs') },
  { files: ['services/store/**/*.ts'], rules: onlyIn('chdb', '@clickhouse/client') },
  { files: ['services/auth/access-store.ts', 'services/killswitch/clickhouse-ks-store.ts'], rules: onlyIn('@clickhouse/client') },
  {
    files: ['services/api/**/*.ts', 'collectors/gateway/receiver.ts', 'services/killswitch/routes.ts', 'services/shared/http.ts', 'services/distributed.ts'],
    rules: onlyIn('fastify'),
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
