// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Who may import which I/O library: each adapter lives in one folder. Kafka: services/bus/kafka/. ClickHouse:
 * services/store/clickhouse/ (the only place that opens it). HTTP servers (fastify): services/api/.
 */
const IO_LIBRARIES = {
  kafkajs: 'Kafka is reached through services/bus/kafka/ only.',
  chdb: 'the in-process ClickHouse engine is opened by services/store/clickhouse/ only.',
  '@clickhouse/client': 'ClickHouse is reached through services/store/clickhouse/ only.',
  fastify: 'HTTP servers live in services/api/ only.',
};
/** Folders of the server that sit below the HTTP edge and the composition roots: they never import either. */
const BELOW_THE_EDGE = /^(\.\.\/)+(api|app)\//.source;
function onlyIn(...allowed) {
  return {
    'no-restricted-imports': [
      'error',
      {
        paths: Object.entries(IO_LIBRARIES)
          .filter(([name]) => !allowed.includes(name))
          .map(([name, message]) => ({ name, message })),
      },
    ],
  };
}
function domainOnlyIn(...allowed) {
  const rule = onlyIn(...allowed)['no-restricted-imports'];
  return {
    'no-restricted-imports': [
      rule[0],
      {
        ...rule[1],
        patterns: [
          {
            regex: BELOW_THE_EDGE,
            allowTypeImports: true,
            message:
              "a domain or adapter folder never imports the HTTP edge (services/api/) or a composition root (services/app/); the root hands it what it needs. Types (the configuration's sections) are allowed.",
          },
        ],
      },
    ],
  };
}

export default tseslint.config(
  {
    ignores: [
      'node_modules/',
      'data/',
      'coverage/',
      'test/kafka/**/*.mjs',
      'dashboards/generated/',
      'kits/typescript/dist/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['eslint.config.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-unnecessary-condition': ['error', { allowConstantLoopConditions: true }],
      '@typescript-eslint/no-confusing-void-expression': 'off',
      'no-console': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
    },
  },
  { files: ['services/**/*.ts', 'collectors/**/*.ts', 'dashboards/**/*.ts', 'scripts/**/*.ts'], rules: onlyIn() },
  {
    files: ['services/{otlp,gateway,mcp-gateway,processor,killswitch,auth,bus,store,detection,learner}/**/*.ts'],
    ignores: ['services/learner/main.ts'],
    rules: domainOnlyIn(),
  },
  { files: ['services/bus/kafka/**/*.ts'], rules: domainOnlyIn('kafkajs') },
  { files: ['services/store/clickhouse/**/*.ts'], rules: domainOnlyIn('chdb', '@clickhouse/client') },
  { files: ['services/api/**/*.ts'], rules: onlyIn('fastify') },
  {
    // services/shared/ is the floor everything stands on (errors, env parsing, ids, the logger): it imports no
    // other folder of services/.
    files: ['services/shared/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: Object.entries(IO_LIBRARIES).map(([name, message]) => ({ name, message })),
          patterns: [
            {
              regex: '^\\.\\./',
              message: 'services/shared/ imports nothing from the rest of services/ (nor schemas/).',
            },
          ],
        },
      ],
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
              message:
                'services/core is pure: of packages it may import only simple-statistics (no node:*, kafkajs, fastify, @clickhouse/*, chdb, …).',
            },
            {
              regex:
                '^(\\.\\./)+(api|app|auth|bus|detection|evaluation|gateway|killswitch|learner|otlp|processor|store|collectors|dashboards|scripts|test)/',
              message: 'services/core is pure: it may not import an adapter; pass values in instead.',
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
    // The TypeScript agent kit is published on its own (@tripline/agent, built from kits/typescript/src): it imports
    // its own modules, node: built-ins and the packages its package.json declares, never Tripline's tree.
    files: ['kits/typescript/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: Object.entries(IO_LIBRARIES).map(([name, message]) => ({ name, message })),
          patterns: [
            {
              regex: '^(\\.\\./)+(services|schemas|collectors|test|scripts|dashboards|kits)/',
              message:
                "the agent kit is installed by itself: it may not import Tripline's code (it owns the span conventions it emits; schemas/conventions.ts re-uses them).",
            },
          ],
        },
      ],
    },
  },
  {
    // The contracts import nothing of the server; of the agent kit, only the span conventions it owns.
    files: ['schemas/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: Object.entries(IO_LIBRARIES).map(([name, message]) => ({ name, message })),
          patterns: [
            {
              regex: '^(\\.\\./)+(services|collectors|test|scripts|dashboards)/',
              message: 'schemas/ holds the contracts: it imports nothing of the server.',
            },
            {
              regex: '^(\\.\\./)+kits/(?!typescript/src/conventions\\.ts$)',
              message: "schemas/ may use the agent kit's span conventions (kits/typescript/src/conventions.ts) only.",
            },
          ],
        },
      ],
    },
  },
  {
    // Test agents written as plain JavaScript, run from outside the repository against an installed package.
    files: ['test/agents/**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
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
