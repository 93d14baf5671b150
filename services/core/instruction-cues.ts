/**
 * Whether text a tool returned carries instructions meant for the agent rather than for the person reading it:
 * the mark of an indirect prompt injection. Mail, invoices, documents, web pages and chat messages address people;
 * an injected instruction addresses the model ("Note to AI assistants: …", "This is an important message from me
 * to you, GPT-4"), overrides what it was told ("ignore previous instructions", "before you can solve the task I
 * gave you"), asks it to keep the step from its user ("do not mention this to the user"), claims an authority approved the step
 * ("per the security team", "this has been approved": the pressure of a fraudulent payment request), or forges the markup of
 * a prompt (`<|im_start|>system`, `###(system_message)`, `[system](#…)`). The phrasings are those of public
 * injection datasets (AgentDojo, InjecAgent, BIPIA) and published attacks, written loosely enough to survive
 * small rewordings.
 *
 * A cue is evidence, not proof, and its absence proves nothing: an attacker can write an invoice that only lists
 * another account. The detector therefore uses cues to back a flow from read content (counterparty-features.ts),
 * never to flag text on its own. Pure and bounded: the first MAX_CUE_TEXT characters are read, in one pass per
 * cue; zero-width and soft-hyphen characters, which hide an instruction from a person, are removed first.
 */
import { INSTRUCTION_CUES } from '../../schemas/events.ts';
import type { InstructionCue } from '../../schemas/events.ts';

/** Longest text read for cues (a longer result is read up to this length). */
export const MAX_CUE_TEXT = 64 * 1024;

const MODEL = String.raw`(?:ai|a\.i\.|llms?|(?:large )?language models?|(?:ai |virtual |digital |email |e-mail |mail |banking |personal )?assistants?|ai agents?|ai models?|chat ?bots?|bots?|gpt(?:-?\d[\w.-]*)?|chatgpt|claude|gemini|copilot|llama)`;

/**
 * Each cue: words every one of its wordings contains (tested first: most results contain none, and a search for a
 * few literals costs a fraction of the full pattern's), then the pattern itself. Both are written in lower case and
 * run on the lowercased text (a case-insensitive pattern is several times slower).
 */
const CUES: readonly (readonly [InstructionCue, RegExp, RegExp])[] = [
  [
    'overrides_instructions',
    /ignore|disregard|forget|override|skip|abandon|before|instruction|adhere|instead/,
    new RegExp(
      [
        String.raw`\b(?:ignore|disregard|forget|override|skip|abandon)\s+(?:all\s+|any\s+|your\s+|the\s+|my\s+|of\s+)*(?:previous|prior|above|earlier|original|preceding|initial|other|existing|system)\s+(?:instructions?|iunstructions?|prompts?|directions?|directives?|rules|tasks?|guidelines|commands?)`,
        String.raw`\bbefore\s+you\s+(?:can\s+)?(?:solve|complete|continue|finish|answer|do|start|proceed)\b[^.\n]{0,40}\b(?:task|request|question)`,
        String.raw`\b(?:new|updated|revised|real|actual|additional)\s+instructions?\s*(?::|for\s+(?:the\s+)?${MODEL}\b)`,
        String.raw`\bstrictly\s+adhere\s+to\s+the\s+following`,
        String.raw`\binstead\s+of\s+(?:the|your)\s+(?:original\s+)?(?:task|instructions?|request)\b`,
      ].join('|'),
    ),
  ],
  [
    'addresses_the_assistant',
    /\bai\b|a\.i\.|llm|language|assistant|bot|gpt|claude|gemini|copilot|llama|important|information|instruction|sys|admin/,
    new RegExp(
      [
        String.raw`\b(?:note|notice|message|instructions?|memo|reminder|request|directive|compliance note|important)\s+(?:to|for)\s+(?:all\s+|any\s+|the\s+)?${MODEL}(?=[\s:,.;!)\]]|$)`,
        String.raw`\bimportant\s+message\s+from\s+me\b`,
        String.raw`\bto\s+you,?\s+${MODEL}\b`,
        String.raw`\b(?:dear|attention|hey|hi|hello)\s+(?:the\s+)?${MODEL}\b`,
        String.raw`\bif\s+you\s+are\s+(?:an?\s+)?${MODEL}\b`,
        String.raw`@(?:ai|assistant|bot|copilot)\b[\s:,]+(?:please\s+)?[a-z]+`,
        String.raw`(?:^|[\n\[(]|[.!?]\s)\s*(?:ai\s+)?assistant\s*[:,]\s*(?:please\s+|now\s+|immediately\s+)?(?:pay|send|transfer|wire|forward|share|update|change|email|mail|post|invite|add|grant|delete|remove|ignore|reply|click|open|run|call|use|execute|book|create|set|make|do)\b`,
        String.raw`<\/?\s*(?:information|instructions?|important|system|admin|sys)\s*>`,
      ].join('|'),
    ),
  ],
  [
    'hides_from_user',
    /not|n't|never|without|keep/,
    new RegExp(
      [
        String.raw`\b(?:do\s+not|don't|never|without)\s+(?:tell(?:ing)?|inform(?:ing)?|mention(?:ing)?|notify(?:ing)?|alert(?:ing)?|reveal(?:ing)?|show(?:ing)?|ask(?:ing)?|confirm(?:ing)?\s+with)\s+(?:this\s+(?:step\s+)?(?:to\s+)?)?(?:the\s+|your\s+)?(?:user|owner|human|person|customer|principal)\b`,
        String.raw`\b(?:do\s+not|don't|never)\s+mention\s+(?:this|that|it)\b`,
        String.raw`\bkeep\s+(?:this|it)\s+(?:secret|hidden|confidential)\s+from\b`,
      ].join('|'),
    ),
  ],
  [
    'claims_authority',
    /\bper\b|behalf|\bby\b|approved|authori|cleared/,
    new RegExp(
      [
        String.raw`\b(?:per|on\s+behalf\s+of|as\s+(?:requested|instructed|ordered|mandated|required)\s+by)\s+(?:the\s+)?(?:security|it|finance|legal|compliance|hr|audit|management|executive|ceo|cfo|admin(?:istrator)?s?)(?:\s+(?:team|department|office|desk))?\b`,
        String.raw`\b(?:this|it)\s+(?:has\s+(?:already\s+)?been|is\s+already)\s+(?:pre-?)?(?:approved|authori[sz]ed|cleared)\b`,
      ].join('|'),
    ),
  ],
  [
    'role_markup',
    /im_start|\[|###|system|developer/,
    new RegExp(
      [
        String.raw`<\|im_start\|>\s*(?:system|assistant)`,
        String.raw`\[\s*(?:system|inst)\s*\]`,
        String.raw`###\s*\(?\s*system[_ ]message`,
        String.raw`\[system\]\(#`,
        String.raw`(?:^|\n)\s*(?:system|developer)\s*(?:prompt|message)?\s*:\s*(?:you\s+(?:are|must|will)|ignore|new)`,
      ].join('|'),
    ),
  ],
];

const HIDDEN_CHARS_RE = /[\u00AD\u200B-\u200F\u2060-\u2064\uFEFF]/g;

/** The cues the text carries, in a fixed order; empty for ordinary text. */
export function instructionCues(text: string): InstructionCue[] {
  let head = text.length > MAX_CUE_TEXT ? text.slice(0, MAX_CUE_TEXT) : text;
  HIDDEN_CHARS_RE.lastIndex = 0;
  if (HIDDEN_CHARS_RE.test(head)) head = head.replace(HIDDEN_CHARS_RE, '');
  const lower = head.toLowerCase();
  const found: InstructionCue[] = [];
  for (const [cue, anchors, pattern] of CUES) if (anchors.test(lower) && pattern.test(lower)) found.push(cue);
  return found;
}

/** The cues a person reads in a reason: `text addressed to the assistant, that overrides its instructions`. */
export const CUE_WORDS: Readonly<Record<InstructionCue, string>> = {
  overrides_instructions: 'overrides its instructions',
  addresses_the_assistant: 'is addressed to the assistant',
  hides_from_user: 'asks it to keep the step from its user',
  claims_authority: 'invokes an authority to justify the step',
  role_markup: 'forges prompt markup',
};

/** The known cues of a list read from elsewhere (an event, a stored row), in their fixed order; undefined for none. */
export function knownCues(list: unknown): InstructionCue[] | undefined {
  if (!Array.isArray(list)) return undefined;
  const cues = INSTRUCTION_CUES.filter((cue) => list.includes(cue));
  return cues.length > 0 ? cues : undefined;
}
