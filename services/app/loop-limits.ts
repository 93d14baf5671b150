/**
 * The loop and rate-limit policy file (services/core/loop-policy.ts, docs/loops.md), read and checked once at
 * start-up: TRIPLINE_LIMITS_FILE names it (default: the shipped policies/limits.json; `off` counts nothing). A file
 * that cannot be read, is not JSON or does not fit the format stops start-up with CONFIG_INVALID naming the
 * variable and the offending value's path.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DISABLED_LOOP_POLICY, LoopPolicyError, parseLoopPolicy } from '../core/loop-policy.ts';
import type { LoopPolicy } from '../core/loop-policy.ts';
import { messageOf } from '../shared/errors.ts';
import { invalid } from '../shared/env.ts';
import type { Env } from '../shared/env.ts';

export const LIMITS_FILE_VARIABLE = 'TRIPLINE_LIMITS_FILE';
export const DEFAULT_LIMITS_FILE = fileURLToPath(new URL('../../policies/limits.json', import.meta.url));

export function readLoopPolicy(env: Env): LoopPolicy {
  const raw = env[LIMITS_FILE_VARIABLE];
  const path = raw === undefined || raw.trim() === '' ? DEFAULT_LIMITS_FILE : raw.trim();
  if (path === 'off') return DISABLED_LOOP_POLICY;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw invalid(LIMITS_FILE_VARIABLE, path, `a readable loop and rate-limit policy file (${messageOf(error)})`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw invalid(LIMITS_FILE_VARIABLE, path, `a JSON file (${messageOf(error)})`);
  }
  try {
    return parseLoopPolicy(document);
  } catch (error) {
    if (error instanceof LoopPolicyError)
      throw invalid(LIMITS_FILE_VARIABLE, path, `a policy as docs/loops.md describes; ${error.message}`);
    throw error;
  }
}
