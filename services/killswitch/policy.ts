/**
 * The policy engine: Cedar (`@cedar-policy/cedar-wasm`) over the policies in a directory, default deny.
 *
 * The directory holds `*.cedar` files (any number of policies each), optionally `schema.cedarschema` (every
 * policy is validated against it at load; a policy that does not validate stops start-up) and optionally
 * `entities.json` (Cedar entities, e.g. agents in groups, for `principal in Tripline::AgentGroup::"..."`).
 * A policy is named by its `@id("...")` annotation, else `<file>:<n>`; every decision carries the ids of the
 * policies that decided it, so a recorded decision says *why*.
 *
 * Requests are `Tripline::Agent::"<agent id>"` doing one of the actions of `ACTIONS` on a resource:
 *   start_task    on Tripline::TaskType::"<task type>"  context { task_id, tools, resources, scopes }
 *   call_tool     on Tripline::Tool::"<tool>"           context { task_id, task_type, tool, resource, score,
 *                                                                 side_effect, granted_tools, granted_resources, scopes,
 *                                                                 arguments, approved }
 *   lease_secret  on Tripline::Secret::"<name>"         context { task_id, task_type, secret, score, scopes }
 * (see policies/schema.cedarschema). Scores are whole numbers 0–100 (Cedar has no floats).
 *
 * Approval points (docs/approvals.md): a `forbid` annotated `@approval("required")` names a call that needs a
 * person, and lets it through `unless { context.approved }`. call_tool requests without `approved` and
 * `arguments` get `false` and `{}` (a caller that knows nothing of approvals can never pass one).
 *
 * The policy set is parsed once (`preparsePolicySet`) and evaluated with `statefulIsAuthorized`: about 60 µs a
 * decision on this machine, against ~470 µs when the text is re-parsed per call.
 */
import type * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import { KillSwitchError } from './errors.ts';
import { DEFAULT_POLICY_DIR } from './settings.ts';

export const ACTIONS = ['start_task', 'call_tool', 'lease_secret'] as const;
export type PolicyAction = (typeof ACTIONS)[number];

const RESOURCE_TYPE: Record<PolicyAction, string> = {
  start_task: 'Tripline::TaskType',
  call_tool: 'Tripline::Tool',
  lease_secret: 'Tripline::Secret',
};

export { DEFAULT_POLICY_DIR };

export type PolicyValue =
  string | number | boolean | readonly string[] | Readonly<Record<string, string | number | boolean>>;

export interface PolicyRequest {
  agentId: string;
  action: PolicyAction;
  /** The task type, tool or secret name. */
  resource: string;
  context: Readonly<Record<string, PolicyValue>>;
}

export interface PolicyDecision {
  decision: 'allow' | 'deny';
  /** The ids of the policies that decided: the permits for an allow, the forbids for a deny (empty = default deny). */
  policies: string[];
  /** Policies that failed to evaluate (they are skipped, as Cedar does). */
  errors: string[];
}

export interface PolicyEngine {
  readonly dir: string;
  /** Every loaded policy id, in load order. */
  policyIds(): string[];
  /** The ids of the policies annotated `@approval("required")`: a call they alone forbid waits for a person. */
  approvalPolicyIds(): string[];
  authorize(request: PolicyRequest): PolicyDecision;
}

let policySetCounter = 0;

let cedarEngine: typeof cedar | undefined;

/**
 * Cedar's WASM engine, loaded with the first policy set rather than on import: it adds ~14 MB to a process,
 * and the processes that never decide a policy (a Kafka gateway, a processor) import this module too.
 */
function engine(): typeof cedar {
  cedarEngine ??= createRequire(import.meta.url)('@cedar-policy/cedar-wasm/nodejs') as typeof cedar;
  return cedarEngine;
}

/** Loads, validates and pre-parses the policies in `dir`. Throws KillSwitchError POLICY_INVALID naming the file. */
export function loadPolicyEngine(dir: string = DEFAULT_POLICY_DIR): PolicyEngine {
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((file) => file.endsWith('.cedar'))
      .sort();
  } catch (error) {
    throw new KillSwitchError(
      'POLICY_INVALID',
      `The policy directory ${dir} cannot be read; set TRIPLINE_POLICY_DIR to a directory of .cedar files`,
      { cause: error },
    );
  }
  const policies: Record<string, string> = {};
  const approvalIds: string[] = [];
  for (const file of files) {
    const text = readFileSync(join(dir, file), 'utf8');
    const parts = engine().policySetTextToParts(text);
    if (parts.type === 'failure')
      throw new KillSwitchError('POLICY_INVALID', `${file} does not parse: ${detail(parts.errors)}`, {
        details: { file },
      });
    if (parts.policy_templates.length > 0)
      throw new KillSwitchError(
        'POLICY_INVALID',
        `${file} holds policy templates, which Tripline does not link; write static policies`,
        { details: { file } },
      );
    parts.policies.forEach((policy, index) => {
      const id = annotatedId(policy) ?? `${basename(file, '.cedar')}:${index}`;
      if (id in policies)
        throw new KillSwitchError(
          'POLICY_INVALID',
          `Two policies are named ${JSON.stringify(id)} (the second in ${file}); @id annotations must be unique`,
          { details: { file, id } },
        );
      policies[id] = policy;
      if (approvalAnnotation(policy, file, id)) approvalIds.push(id);
    });
  }
  if (Object.keys(policies).length === 0) {
    throw new KillSwitchError(
      'POLICY_INVALID',
      `${dir} holds no .cedar policies: with default deny nothing would ever be allowed`,
    );
  }
  const schemaFile = join(dir, 'schema.cedarschema');
  if (existsSync(schemaFile)) {
    const answer = engine().validate({
      schema: readFileSync(schemaFile, 'utf8'),
      policies: { staticPolicies: policies },
    });
    if (answer.type === 'failure')
      throw new KillSwitchError('POLICY_INVALID', `schema.cedarschema does not parse: ${detail(answer.errors)}`);
    const first = answer.validationErrors[0];
    if (first !== undefined) {
      throw new KillSwitchError(
        'POLICY_INVALID',
        `Policy ${first.policyId} does not validate against schema.cedarschema: ${first.error.message}`,
        {
          details: { policy: first.policyId, errors: answer.validationErrors.length },
        },
      );
    }
  }
  const entities = loadEntities(join(dir, 'entities.json'));
  policySetCounter += 1;
  const setId = `tripline-policies-${process.pid}-${policySetCounter}`;
  const parsed = engine().preparsePolicySet(setId, { staticPolicies: policies });
  if (parsed.type === 'failure')
    throw new KillSwitchError('POLICY_INVALID', `The policies do not parse together: ${detail(parsed.errors)}`);
  const ids = Object.keys(policies);

  return {
    dir,
    policyIds: () => [...ids],
    approvalPolicyIds: () => [...approvalIds],
    authorize(request) {
      const context =
        request.action === 'call_tool' ? { arguments: {}, approved: false, ...request.context } : request.context;
      const answer = engine().statefulIsAuthorized({
        principal: { type: 'Tripline::Agent', id: request.agentId },
        action: { type: 'Tripline::Action', id: request.action },
        resource: { type: RESOURCE_TYPE[request.action], id: request.resource },
        context: toCedarContext(context),
        preparsedPolicySetId: setId,
        entities,
      });
      if (answer.type === 'failure') {
        // A malformed request (never a policy's fault): deny, and say why.
        return { decision: 'deny', policies: [], errors: answer.errors.map((error) => error.message) };
      }
      const { decision, diagnostics } = answer.response;
      return {
        decision,
        policies: [...diagnostics.reason],
        errors: diagnostics.errors.map((error) => `${error.policyId}: ${error.error.message}`),
      };
    },
  };
}

function annotatedId(policy: string): string | undefined {
  const json = engine().policyToJson(policy);
  if (json.type !== 'success') return undefined;
  const id = json.json.annotations?.id;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

/**
 * Whether the policy is an approval point (`@approval("required")`). Only a forbid can be one (a permit that
 * waits for a person would grant what nothing else grants); any other value of the annotation is refused.
 */
function approvalAnnotation(policy: string, file: string, id: string): boolean {
  const json = engine().policyToJson(policy);
  if (json.type !== 'success') return false;
  const value = json.json.annotations?.approval;
  if (value === undefined) return false;
  if (value !== 'required')
    throw new KillSwitchError(
      'POLICY_INVALID',
      `Policy ${id} in ${file} has @approval(${JSON.stringify(value)}); the only value is "required"`,
      { details: { file, id } },
    );
  if (json.json.effect !== 'forbid')
    throw new KillSwitchError(
      'POLICY_INVALID',
      `Policy ${id} in ${file} is an approval point but a permit; write it as a forbid … unless { context.approved }`,
      { details: { file, id } },
    );
  return true;
}

function loadEntities(file: string): cedar.EntityJson[] {
  if (!existsSync(file)) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new KillSwitchError(
      'POLICY_INVALID',
      `entities.json is not JSON: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (!Array.isArray(parsed))
    throw new KillSwitchError(
      'POLICY_INVALID',
      'entities.json must be a JSON array of Cedar entities ({ "uid": {...}, "attrs": {...}, "parents": [...] })',
    );
  const answer = engine().checkParseEntities({ entities: parsed as cedar.EntityJson[] });
  if (answer.type === 'failure')
    throw new KillSwitchError('POLICY_INVALID', `entities.json does not parse: ${detail(answer.errors)}`);
  return parsed as cedar.EntityJson[];
}

function toCedarContext(context: Readonly<Record<string, PolicyValue>>): cedar.Context {
  const out: cedar.Context = {};
  for (const [key, value] of Object.entries(context)) {
    if (typeof value === 'number') out[key] = Math.round(value);
    else if (typeof value === 'string' || typeof value === 'boolean') out[key] = value;
    else if (isStringList(value)) out[key] = [...value];
    else out[key] = toCedarContext(value);
  }
  return out;
}

function isStringList(value: PolicyValue): value is readonly string[] {
  return Array.isArray(value);
}

function detail(errors: readonly cedar.DetailedError[]): string {
  return errors.map((error) => error.message).join('; ');
}
