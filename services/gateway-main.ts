/**
 * The gateway service of the distributed mode on its own: `KAFKA_BROKERS=… node services/gateway-main.ts`
 * (TRIPLINE_ROLES, when set, overrides the role). See services/distributed.ts.
 */
import { runDistributedMain } from './distributed-main.ts';

await runDistributedMain(['gateway']);
