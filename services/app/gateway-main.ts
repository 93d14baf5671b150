/**
 * The gateway service of the distributed mode on its own: `KAFKA_BROKERS=… node services/app/gateway-main.ts`
 * (TRIPLINE_ROLES, when set, overrides the role). See services/app/distributed.ts.
 */
import { runDistributedMain } from './distributed-main.ts';

await runDistributedMain(['gateway']);
