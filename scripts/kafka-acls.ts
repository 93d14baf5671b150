/**
 * Creates the Kafka ACLs of Tripline's roles (services/bus/kafka/acls.ts) on a cluster that authenticates its
 * clients and enforces ACLs, as an administrator:
 *
 *   KAFKA_BROKERS=… KAFKA_SASL_MECHANISM=scram-sha-256 KAFKA_SASL_USERNAME=<admin> KAFKA_SASL_PASSWORD=… \
 *     node scripts/kafka-acls.ts --gateway <user> --processor <user> --api <user> [--collector <user>] [--dry-run]
 *
 * Topic names and the processors' group come from the same variables the services read (TRIPLINE_TOPIC_*,
 * KAFKA_GROUP_ID). `--dry-run` prints the ACLs without connecting. Safe to run again.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../services/app/config.ts';
import { KAFKA_ROLES, applyAcls, triplineAcls } from '../services/bus/kafka/acls.ts';
import type { RolePrincipals } from '../services/bus/kafka/acls.ts';
import { createKafka } from '../services/bus/kafka/client.ts';
import { loadKafkaSettings } from '../services/bus/kafka/config.ts';
import { messageOf } from '../services/shared/errors.ts';
import { createLogger } from '../services/shared/logger.ts';

const { values } = parseArgs({
  options: {
    gateway: { type: 'string' },
    processor: { type: 'string' },
    api: { type: 'string' },
    collector: { type: 'string' },
    'dry-run': { type: 'boolean', default: false },
  },
});

try {
  const config = loadConfig();
  const settings = loadKafkaSettings(config.kafka);
  const principals: RolePrincipals = {};
  for (const role of KAFKA_ROLES) if (values[role] !== undefined) principals[role] = values[role];
  const acls = triplineAcls(settings, principals);
  for (const acl of acls)
    console.log(
      `${acl.principal} ${acl.operation} ${acl.resource} ${acl.name}${acl.pattern === 'prefixed' ? '*' : ''}`,
    );
  if (!values['dry-run']) {
    const admin = createKafka(settings, createLogger(config.logLevel), { role: 'acl-admin' }).admin();
    await admin.connect();
    try {
      await applyAcls(admin, acls);
    } finally {
      await admin.disconnect();
    }
    console.log(`created ${String(acls.length)} ACLs`);
  }
} catch (error) {
  process.stderr.write(`kafka-acls: ${messageOf(error)}\n`);
  process.exit(1);
}
