/** Prints the configuration table for the README from services/config.ts (`node scripts/config-table.ts`). */
import { CONFIG_VARIABLES } from '../services/config.ts';

console.log('| variable | default | meaning |\n|---|---|---|');
for (const [name, fallback, meaning] of CONFIG_VARIABLES) console.log(`| \`${name}\` | \`${fallback}\` | ${meaning} |`);
