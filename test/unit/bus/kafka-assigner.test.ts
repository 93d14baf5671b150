/**
 * The co-partitioning assigner as plain data: every member gets the same partition numbers of every topic, the
 * numbers are spread in contiguous ranges like Kafka's RangeAssignor, and nothing is left unassigned.
 */
import { describe, expect, it } from 'vitest';
import { coPartitionedAssignment, rangeOfNumbers } from '../../../services/bus/kafka/assigner.ts';

const TOPICS = ['tripline.tool_calls', 'tripline.data_access', 'tripline.privilege_changes'];

describe('co-partitioned assignment', () => {
  it('spreads partition numbers in contiguous ranges over the sorted members', () => {
    expect(Object.fromEntries(rangeOfNumbers(['b', 'a', 'c'], 7))).toEqual({ a: [0, 1, 2], b: [3, 4], c: [5, 6] });
    expect(Object.fromEntries(rangeOfNumbers(['a', 'b'], 1))).toEqual({ a: [0], b: [] });
    expect(rangeOfNumbers([], 4).size).toBe(0);
  });

  it('gives each member the same numbers of every topic', () => {
    for (const members of [1, 2, 3, 5, 7]) {
      for (const partitions of [1, 6, 12]) {
        const subscriptions = new Map(Array.from({ length: members }, (_, i) => [`member-${i}`, TOPICS]));
        const plan = coPartitionedAssignment(subscriptions, new Map(TOPICS.map((topic) => [topic, partitions])));
        const seen = new Set<number>();
        for (const assignment of plan.values()) {
          const numbers = TOPICS.map((topic) => JSON.stringify(assignment[topic] ?? []));
          expect(new Set(numbers).size).toBe(1);
          for (const n of assignment[TOPICS[0] ?? ''] ?? []) {
            expect(seen.has(n)).toBe(false);
            seen.add(n);
          }
        }
        expect(seen.size).toBe(partitions);
      }
    }
  });

  it('assigns every partition even when the counts or subscriptions differ', () => {
    const subscriptions = new Map([
      ['a', TOPICS],
      ['b', TOPICS.slice(0, 2)],
    ]);
    const counts = new Map([
      [TOPICS[0] ?? '', 4],
      [TOPICS[1] ?? '', 4],
      [TOPICS[2] ?? '', 2],
    ]);
    const plan = coPartitionedAssignment(subscriptions, counts);
    expect(plan.get('a')).toEqual({ [TOPICS[0] ?? '']: [0, 1], [TOPICS[1] ?? '']: [0, 1], [TOPICS[2] ?? '']: [0, 1] });
    expect(plan.get('b')).toEqual({ [TOPICS[0] ?? '']: [2, 3], [TOPICS[1] ?? '']: [2, 3] });
  });
});
