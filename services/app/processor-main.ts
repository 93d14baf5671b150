/**
 * The processor service of the distributed mode on its own: `KAFKA_BROKERS=… node services/app/processor-main.ts`
 * (TRIPLINE_ROLES, when set, overrides the role). See services/app/distributed.ts.
 */
import { runDistributedMain } from './distributed-main.ts';

await runDistributedMain(['processor']);
