/**
 * The Kafka ACLs of Tripline's roles, for a broker that authenticates its clients (KAFKA_SASL_*) and enforces ACLs
 * with nothing allowed by default (`allow.everyone.if.no.acl.found=false`). Each role runs as its own principal
 * and may do only what it needs:
 *
 *   gateway, collector  write the three span topics
 *   processor           read the span topics in its consumer group; write alerts, revocations, dead letters; read
 *                       revocations (each process's kill-switch group, `tripline-killswitch-<uuid>`)
 *   api                 write alerts and revocations (a person's kills and restores); read revocations likewise
 *
 * Every role may see (DESCRIBE) and create (CREATE, at first start) the Tripline topics, nothing else. So only the
 * API and the processors can write `tripline.revocations`: an agent's or a gateway's credentials cannot publish a
 * forged restore. `triplineAcls` describes them; `applyAcls` creates them with an administrator's client
 * (`node scripts/kafka-acls.ts`).
 */
import kafkajs from 'kafkajs';
import type { Admin } from 'kafkajs';
import { allTopics, spanTopics } from './config.ts';
import type { KafkaSettings } from './config.ts';

export const KAFKA_ROLES = ['gateway', 'collector', 'processor', 'api'] as const;
export type KafkaRole = (typeof KAFKA_ROLES)[number];

/** The SASL user of each role (the collector is optional: set it when the upstream collector writes spans). */
export type RolePrincipals = Partial<Record<KafkaRole, string>>;

/** The kill-switch bridge's consumer groups (services/bus/kafka/kill-switch.ts): one per process. */
export const KILL_SWITCH_GROUP_PREFIX = 'tripline-killswitch-';

export interface TriplineAcl {
  principal: string;
  resource: 'topic' | 'group';
  name: string;
  /** `prefixed`: every name that starts with `name`. */
  pattern: 'literal' | 'prefixed';
  operation: 'describe' | 'create' | 'read' | 'write';
}

export function triplineAcls(
  settings: Pick<KafkaSettings, 'topics' | 'groupId'>,
  principals: RolePrincipals,
): TriplineAcl[] {
  const acls: TriplineAcl[] = [];
  const topic = (user: string, name: string, operation: TriplineAcl['operation']): void => {
    acls.push({ principal: `User:${user}`, resource: 'topic', name, pattern: 'literal', operation });
  };
  const group = (user: string, name: string, pattern: TriplineAcl['pattern']): void => {
    acls.push({ principal: `User:${user}`, resource: 'group', name, pattern, operation: 'read' });
  };
  const { topics } = settings;
  for (const role of KAFKA_ROLES) {
    const user = principals[role];
    if (user === undefined) continue;
    for (const name of allTopics(topics)) {
      topic(user, name, 'describe');
      topic(user, name, 'create');
    }
    if (role === 'gateway' || role === 'collector') for (const name of spanTopics(topics)) topic(user, name, 'write');
    if (role === 'processor') {
      for (const name of spanTopics(topics)) topic(user, name, 'read');
      group(user, settings.groupId, 'literal');
      topic(user, topics.deadLetter, 'write');
    }
    if (role === 'processor' || role === 'api') {
      topic(user, topics.alerts, 'write');
      topic(user, topics.revocations, 'write');
      topic(user, topics.revocations, 'read');
      group(user, KILL_SWITCH_GROUP_PREFIX, 'prefixed');
    }
  }
  return acls;
}

// kafkajs is CommonJS, and Node's named-export detection misses these enums.
const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, ResourcePatternTypes } = kafkajs;

const OPERATIONS = {
  describe: AclOperationTypes.DESCRIBE,
  create: AclOperationTypes.CREATE,
  read: AclOperationTypes.READ,
  write: AclOperationTypes.WRITE,
} as const;

/** Creates the ACLs (idempotent: Kafka keeps one binding per distinct ACL). */
export async function applyAcls(admin: Admin, acls: readonly TriplineAcl[]): Promise<void> {
  await admin.createAcls({
    acl: acls.map((acl) => ({
      resourceType: acl.resource === 'topic' ? AclResourceTypes.TOPIC : AclResourceTypes.GROUP,
      resourceName: acl.name,
      resourcePatternType: acl.pattern === 'literal' ? ResourcePatternTypes.LITERAL : ResourcePatternTypes.PREFIXED,
      principal: acl.principal,
      host: '*',
      operation: OPERATIONS[acl.operation],
      permissionType: AclPermissionTypes.ALLOW,
    })),
  });
}
