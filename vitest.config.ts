import { defineConfig } from 'vitest/config';

// chdb must stay on the main thread of a process (it hangs after use from a worker thread), so test files
// run in forked processes, each with its own data directory.
export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 180_000,
    fileParallelism: true,
    maxWorkers: 2,
    projects: [
      // Pure code: no broker, no JVM, no ClickHouse, no browser (`npm run test:unit`).
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'system',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**', '**/node_modules/**'],
          // Starts a real Kafka broker (test/kafka/broker.sh) unless KAFKA_BROKERS names one; fails clearly without Java/Maven.
          globalSetup: ['test/helpers/global-setup.ts'],
        },
      },
    ],
  },
});
