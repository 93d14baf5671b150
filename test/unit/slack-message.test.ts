/**
 * Slack messages carry text an agent chose (its id, task ids and types, the reasons quoting its spans). In Slack's
 * `mrkdwn`, `<!channel>`, `<!here>`, `<@U…>` ping people and `<url|text>` links: all of it must arrive escaped
 * (`&`, `<`, `>`, as Slack's formatting rules say), so a hostile agent can neither ping nor plant a link.
 */
import { describe, expect, it } from 'vitest';
import type { Revocation } from '../../schemas/events.ts';
import { fromRevocation } from '../../services/killswitch/notifiers/notification.ts';
import { slackEscape, slackMessage } from '../../services/killswitch/notifiers/targets.ts';

const HOSTILE = '<!channel> <!here|here> <@U024BE7LH> <https://evil.example/login|Re-authenticate here> & more';

const revocation: Revocation = {
  id: 'rev-1',
  tenant: 'default',
  taskId: `task ${HOSTILE}`,
  taskType: `type ${HOSTILE}`,
  agentId: `agent ${HOSTILE}`,
  action: 'revoke',
  source: 'detector',
  actor: 'tripline/detector',
  reason: 'score over the threshold',
  reasons: [`read ${HOSTILE}`],
  score: 97,
  eventId: 'event-1',
  timeMs: Date.parse('2026-01-02T03:04:05Z'),
};

/** Every mrkdwn text of a Slack message: the top-level `text` and the texts of its blocks. */
function mrkdwnTexts(message: Record<string, unknown>): string[] {
  const texts = [message.text as string];
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const item of value) visit(item);
    } else if (typeof value === 'object' && value !== null) {
      const record = value as Record<string, unknown>;
      if (record.type === 'mrkdwn' && typeof record.text === 'string') texts.push(record.text);
      for (const child of Object.values(record)) visit(child);
    }
  };
  visit(message.blocks);
  return texts;
}

describe('Slack messages and agent-controlled text', () => {
  it('escapes &, < and > and nothing else', () => {
    expect(slackEscape('a & b <!here> c > d')).toBe('a &amp; b &lt;!here&gt; c &gt; d');
    expect(slackEscape('plain text: @channel *bold*')).toBe('plain text: @channel *bold*');
  });

  it("gives a hostile agent's text no mention and no link in any mrkdwn text", () => {
    const message = slackMessage(fromRevocation(revocation, 'https://tripline.example'));
    const texts = mrkdwnTexts(message);
    expect(texts.length).toBeGreaterThanOrEqual(4);
    const joined = texts.join('\n');
    // What Tripline itself links: its own revocation page, and nothing else.
    expect([...joined.matchAll(/<([^>]*)>/g)].map((match) => match[1])).toEqual([
      'https://tripline.example/v1/revocations/rev-1|details',
    ]);
    expect(joined).toContain('agent &lt;!channel&gt; &lt;!here|here&gt; &lt;@U024BE7LH&gt;');
    expect(joined).toContain('&lt;https://evil.example/login|Re-authenticate here&gt; &amp; more');
    expect(joined).not.toMatch(/&(?!amp;|lt;|gt;)/);
  });
});
