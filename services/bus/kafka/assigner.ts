/**
 * A kafkajs partition assigner that keeps the span topics co-partitioned: every member gets the SAME partition
 * numbers of every topic it subscribes to (partition 3 of tool_calls, data_access and privilege_changes all go
 * to one processor). Records are keyed by trace id (Tripline's gateway, and the upstream collector with
 * `partition_traces_by_id`), and every producer uses one key hash for all three topics, so one trace's spans
 * land on the same partition number of each topic, and so on one processor, which resolves and holds its task.
 *
 * Partition numbers are spread like Kafka's RangeAssignor: members sorted by id, each gets a contiguous range,
 * the first `numbers % members` one extra. The span topics should have identical partition counts
 * (`ensureTopics` checks); if they do not, the numbers are taken from the largest topic and a topic simply
 * lacks the numbers it does not have.
 */
import { AssignerProtocol } from 'kafkajs';
import type { Assigner, GroupMemberAssignment, PartitionAssigner } from 'kafkajs';

export const CO_PARTITION_ASSIGNER_NAME = 'TriplineCoPartitionAssigner';

/** Which partition numbers (0..numbers-1) each member owns: contiguous ranges over the sorted member ids. */
export function rangeOfNumbers(memberIds: readonly string[], numbers: number): Map<string, number[]> {
  const sorted = [...memberIds].sort();
  const owned = new Map<string, number[]>(sorted.map((id) => [id, []]));
  if (sorted.length === 0) return owned;
  const per = Math.floor(numbers / sorted.length);
  const extra = numbers % sorted.length;
  let next = 0;
  sorted.forEach((id, index) => {
    const count = per + (index < extra ? 1 : 0);
    const list = owned.get(id);
    for (let i = 0; i < count; i += 1) list?.push(next + i);
    next += count;
  });
  return owned;
}

/**
 * The assignment as plain data (member → topic → partitions), given each member's subscribed topics and each
 * topic's partition count. A partition number goes to its owner when the owner subscribes to the topic, else to
 * one of the topic's subscribers (so nothing is left unassigned when subscriptions differ during a rolling
 * upgrade).
 */
export function coPartitionedAssignment(
  subscriptions: ReadonlyMap<string, readonly string[]>,
  partitionCounts: ReadonlyMap<string, number>,
): Map<string, Record<string, number[]>> {
  const memberIds = [...subscriptions.keys()].sort();
  const numbers = Math.max(0, ...partitionCounts.values());
  const owners = rangeOfNumbers(memberIds, numbers);
  const ownerOf = new Map<number, string>();
  for (const [member, list] of owners) for (const n of list) ownerOf.set(n, member);

  const result = new Map<string, Record<string, number[]>>(memberIds.map((id) => [id, {}]));
  for (const [topic, count] of [...partitionCounts.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    const subscribers = memberIds.filter((id) => subscriptions.get(id)?.includes(topic) === true);
    if (subscribers.length === 0) continue;
    for (let n = 0; n < count; n += 1) {
      const owner = ownerOf.get(n);
      const member = owner !== undefined && subscribers.includes(owner) ? owner : subscribers[n % subscribers.length];
      if (member === undefined) continue;
      const assignment = result.get(member);
      if (assignment === undefined) continue;
      (assignment[topic] ??= []).push(n);
    }
  }
  return result;
}

/** The kafkajs factory. Pass as `partitionAssigners: [coPartitionAssigner]` to every processor's consumer. */
export const coPartitionAssigner: PartitionAssigner = ({ cluster, logger }) => {
  const assigner: Assigner = {
    name: CO_PARTITION_ASSIGNER_NAME,
    version: 0,
    assign({ members, topics }) {
      const subscriptions = new Map<string, readonly string[]>();
      for (const member of members) {
        const metadata = AssignerProtocol.MemberMetadata.decode(member.memberMetadata);
        subscriptions.set(member.memberId, metadata?.topics ?? topics);
      }
      const counts = new Map<string, number>();
      for (const topic of topics) counts.set(topic, cluster.findTopicPartitionMetadata(topic).length);
      if (new Set(counts.values()).size > 1) {
        logger.warn(
          'topics of the group have different partition counts: co-partitioning holds only for the common partition numbers',
          {
            counts: Object.fromEntries(counts),
          },
        );
      }
      const plan = coPartitionedAssignment(subscriptions, counts);
      const assignments: GroupMemberAssignment[] = [...plan].map(([memberId, assignment]) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: assigner.version,
          assignment,
          userData: Buffer.alloc(0),
        }),
      }));
      return Promise.resolve(assignments);
    },
    protocol({ topics }) {
      return {
        name: assigner.name,
        metadata: AssignerProtocol.MemberMetadata.encode({
          version: assigner.version,
          topics,
          userData: Buffer.alloc(0),
        }),
      };
    },
  };
  return assigner;
};
