/**
 * Prints the configuration tables for the README from the code that reads them
 * (`node scripts/config-table.ts`): the core variables, then the distributed mode's.
 */
import { CONFIG_VARIABLES } from '../services/app/config.ts';
import { KAFKA_CONFIG_VARIABLES } from '../services/bus/kafka/config.ts';
import { ROLE_VARIABLE } from '../services/app/distributed.ts';

function table(rows: readonly (readonly [string, string, string])[]): string {
  return [
    '| variable | default | meaning |',
    '|---|---|---|',
    ...rows.map(([name, fallback, meaning]) => `| \`${name}\` | \`${fallback}\` | ${meaning} |`),
  ].join('\n');
}

console.log(table(CONFIG_VARIABLES));
console.log('\nDistributed mode (read when `KAFKA_BROKERS` is set):\n');
console.log(table([ROLE_VARIABLE, ...KAFKA_CONFIG_VARIABLES]));
