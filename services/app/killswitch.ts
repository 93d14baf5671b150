/**
 * The kill switch's composition: everything that turns a revocation into an effective, verified kill, wired to
 * one process's kill switch port. `startKillSwitchRuntime()` is what the embedded mode calls (and what an API
 * process calls in the distributed mode, with its Kafka-bridged kill switch):
 *
 *   keys → tokens → authority (issues tokens, answers introspection from memory, learns revocations first)
 *   policy (Cedar) → authority, checker, leases
 *   secret providers (built-in encrypted store, optional webhook vault) → leases
 *   verifier (ends leases at a kill, watches the agent, records the outcome, alerts on failure)
 *   stream hub (SSE) and notifier dispatcher.
 *
 * Subscription order on the kill switch matters and is fixed here: the authority first (introspection is
 * inactive before anyone hears of the revocation), then the stream (agents hear of it next), the verifier,
 * the notifiers (which only enqueue).
 * `processorHooks` are what the processor calls: events of revoked tasks (verification) and task ends (leases).
 */
import type { AgentEvent, Alert, Revocation } from '../../schemas/events.ts';
import { messageOf } from '../shared/errors.ts';
import { createShutdownSteps } from './shutdown-steps.ts';
import type { Logger } from '../shared/logger.ts';
import { createAuthority } from '../killswitch/authority.ts';
import type { Authority } from '../killswitch/authority.ts';
import { createBatchWriter } from '../killswitch/batch-writer.ts';
import type { BatchWriter } from '../killswitch/batch-writer.ts';
import { createInMemoryApprovalStore } from '../killswitch/approval-store.ts';
import type { ApprovalStore } from '../killswitch/approval-store.ts';
import { createApprovalManager } from '../killswitch/approvals.ts';
import type { ApprovalManager } from '../killswitch/approvals.ts';
import { openClickHouseApprovalStore } from '../store/clickhouse/approval-store.ts';
import { createChecker } from '../killswitch/checks.ts';
import type { Checker, TaskStateSource } from '../killswitch/checks.ts';
import { createSilentTaskWatch } from '../killswitch/silent-tasks.ts';
import { openClickHouseKillSwitchStore } from '../store/clickhouse/kill-switch-store.ts';
import { loadSecretsKey, loadSigningKey } from '../killswitch/keys.ts';
import type { SigningKey } from '../killswitch/keys.ts';
import type { KillSwitch } from '../killswitch/kill-switch.ts';
import type { CredentialRecord, KillSwitchStore, PolicyDecisionRecord } from '../killswitch/ks-store.ts';
import { createLeaseManager } from '../killswitch/leases.ts';
import type { LeaseManager } from '../killswitch/leases.ts';
import { createDispatcher } from '../killswitch/notifiers/dispatcher.ts';
import type { Dispatcher } from '../killswitch/notifiers/dispatcher.ts';
import {
  fromAlert,
  fromApprovalRequest,
  fromEscalation,
  fromFailedVerification,
  fromRevocation,
} from '../killswitch/notifiers/notification.ts';
import type { NotifierTarget } from '../killswitch/notifiers/targets.ts';
import type { NotifierConfig } from '../killswitch/notifiers/config.ts';
import { loadPolicyEngine } from '../killswitch/policy.ts';
import type { PolicyEngine } from '../killswitch/policy.ts';
import { createBuiltinSecretStore, createWebhookSecretProvider } from '../killswitch/secrets.ts';
import type { BuiltinSecretStore, SecretProvider } from '../killswitch/secrets.ts';
import type { KillSwitchConfig } from '../killswitch/settings.ts';
import { createStreamHub } from '../killswitch/stream.ts';
import type { StreamHub } from '../killswitch/stream.ts';
import { createTokenService } from '../killswitch/tokens.ts';
import type { TaskClaims, TokenService } from '../killswitch/tokens.ts';
import { createVerifier } from '../killswitch/verifier.ts';
import type { Verifier } from '../killswitch/verifier.ts';

/** What the processor calls (see ProcessorOptions.hooks). */
export interface ProcessorHooks {
  /** An event of a task that is revoked now. */
  onRevokedTaskEvent(event: AgentEvent): void;
  /** A task ended (its span ended, or it went idle). */
  onTaskEnded(tenant: string, taskId: string, endMs: number): void;
}

export interface KillSwitchRuntimeOptions {
  config: KillSwitchConfig;
  /** Where the kill switch's tables are (the same ClickHouse as the spine's store, already migrated). */
  storage:
    | { url: string | undefined; username: string; password: string; dataDir: string; database: string }
    | { store: KillSwitchStore; approvals?: ApprovalStore };
  killSwitch: KillSwitch;
  /** Stores the alert of a failed verification (the spine's store). */
  insertAlerts(alerts: Alert[]): Promise<void>;
  /** The task's current status and score (the processor's memory, else the store). */
  taskState: TaskStateSource;
  logger: Logger;
  /** Replaces the notifier targets (tests). */
  notifierTargets?: (config: NotifierConfig) => NotifierTarget;
  /** A task got a token (the embedded mode registers it with the processor); `isNew`: Tripline chose its id. */
  onTaskStarted?: (claims: TaskClaims, isNew: boolean) => void;
  now?: () => number;
}

export interface KillSwitchRuntime {
  config: KillSwitchConfig;
  key: SigningKey;
  tokens: TokenService;
  policy: PolicyEngine;
  authority: Authority;
  leases: LeaseManager;
  secrets: BuiltinSecretStore;
  checker: Checker;
  /** Approval points (docs/approvals.md). */
  approvals: ApprovalManager;
  verifier: Verifier;
  dispatcher: Dispatcher;
  stream: StreamHub;
  store: KillSwitchStore;
  processorHooks: ProcessorHooks;
  /** Writes revocations over the kill switch's own connection (ProcessorOptions.writeRevocations). */
  writeRevocations(rows: readonly Revocation[]): Promise<void>;
  /** Writes everything queued in the background (decisions, credentials). */
  flush(): Promise<void>;
  stop(): Promise<void>;
  /** The shutdown steps under way. */
  pendingStops(): string[];
}

export async function startKillSwitchRuntime(options: KillSwitchRuntimeOptions): Promise<KillSwitchRuntime> {
  const { config, killSwitch } = options;
  const logger = options.logger.child({ component: 'killswitch' });
  const now = options.now ?? Date.now;
  const policy = loadPolicyEngine(config.policyDir);
  const key = await loadSigningKey({ configured: config.signingKey, keysDir: config.keysDir });
  const secretsKey = loadSecretsKey({ configured: config.secretsKey, keysDir: config.keysDir });
  const store =
    'store' in options.storage ? options.storage.store : await openClickHouseKillSwitchStore(options.storage);
  const ownsStore = !('store' in options.storage);
  const cleanups = createShutdownSteps(logger, 'error while stopping the kill switch');
  if (ownsStore) cleanups.add('store', () => store.close());

  try {
    const { decisions, credentials } = createRecordWriters(store, logger);
    cleanups.add('decision writer', () => decisions.stop());
    cleanups.add('credential writer', () => credentials.stop());

    const tokens = createTokenService({
      key,
      issuer: config.tokenIssuer,
      audience: config.tokenAudience,
      ttlSeconds: config.tokenTtlSeconds,
      now,
    });
    // First subscriber of the kill switch: introspection turns inactive before anyone else hears of a kill.
    const authority = createAuthority({
      tokens,
      policy,
      store,
      killSwitch,
      decisions,
      credentials,
      escalation: config.escalation,
      kid: key.kid,
      logger,
      now,
      ...(options.onTaskStarted === undefined ? {} : { onTaskStarted: options.onTaskStarted }),
    });
    cleanups.add('authority', () => authority.stop());
    await authority.load();

    // A credentialed task that checks or leases without telemetry alerts once (services/killswitch/silent-tasks.ts).
    const silentTasks = createSilentTaskWatch({
      graceMs: config.silentTaskGraceMs,
      now,
      raise(alert) {
        logger.warn({ taskId: alert.taskId, agentId: alert.agentId }, 'a credentialed task acts without telemetry');
        killSwitch.alert(alert);
        options
          .insertAlerts([alert])
          .catch((error: unknown) => logger.error({ err: messageOf(error) }, 'storing a no-telemetry alert failed'));
      },
    });
    const secrets = createBuiltinSecretStore({ store, key: secretsKey.key, now });
    const providers: SecretProvider[] = [secrets.provider];
    if (config.secretWebhook !== undefined) providers.push(createWebhookSecretProvider(config.secretWebhook));
    const leases = createLeaseManager({
      store,
      providers,
      policy,
      decisions,
      authority,
      taskState: options.taskState,
      silentTasks,
      ttlSeconds: config.leaseTtlSeconds,
      logger,
      now,
    });
    cleanups.add('leases', () => leases.stop());
    await leases.load();

    const approvalStore =
      'store' in options.storage
        ? (options.storage.approvals ?? createInMemoryApprovalStore())
        : await openClickHouseApprovalStore(options.storage);
    if (ownsStore) cleanups.add('approvals store', () => approvalStore.close());
    const approvals = createApprovalManager({
      store: approvalStore,
      ttlMs: config.approvalTtlSeconds * 1000,
      logger,
      now,
    });
    cleanups.add('approvals', () => approvals.stop());
    await approvals.load();
    const checker = createChecker({
      authority,
      policy,
      taskState: options.taskState,
      decisions,
      silentTasks,
      approvals,
      publicUrl: config.publicUrl,
      now,
    });
    const dispatcher = createDispatcher(config.notifiers, logger, options.notifierTargets);
    cleanups.add('notifier dispatcher', () => dispatcher.stop());
    // A person is asked (Slack, webhooks): a link to the approval in the console.
    const unsubscribeApprovals = approvals.subscribe((step, approval) => {
      if (step.step === 'requested') dispatcher.notify(fromApprovalRequest(approval, config.publicUrl));
    });
    cleanups.add('approval notifications', unsubscribeApprovals);
    const stream = createStreamHub({
      killSwitch,
      authority,
      logger,
      heartbeatMs: config.streamHeartbeatMs,
      maxClients: config.streamMaxClients,
      maxClientsPerTenant: config.streamMaxClientsPerTenant,
    });
    cleanups.add('stream', () => stream.stop());

    const verifier = createVerifier({
      store,
      authority,
      leases,
      killSwitch,
      insertAlerts: (alerts) => options.insertAlerts(alerts),
      windowMs: config.verifyWindowMs,
      clockSkewMs: config.verifyClockSkewMs,
      requireAck: config.verifyRequireAck,
      logger,
      now,
      onOutcome(verification, revocation) {
        stream.verification(verification);
        if (verification.outcome === 'failed')
          dispatcher.notify(fromFailedVerification(verification, revocation, config.publicUrl));
      },
    });
    cleanups.add('verifier', () => verifier.stop());

    // Notifications: after every enforcement subscriber.
    for (const unsubscribe of subscribeNotifications({
      killSwitch,
      authority,
      verifier,
      dispatcher,
      publicUrl: config.publicUrl,
    }))
      cleanups.add('notifications', unsubscribe);
    await verifier.load();

    logger.info(
      {
        policies: policy.policyIds().length,
        policyDir: policy.dir,
        kid: key.kid,
        signingKey: key.origin,
        secretsKey: secretsKey.origin,
        notifiers: config.notifiers.map((n) => n.name),
        secretWebhook: config.secretWebhook !== undefined,
      },
      'kill switch ready',
    );

    return {
      config,
      key,
      tokens,
      policy,
      authority,
      leases,
      secrets,
      checker,
      approvals,
      verifier,
      dispatcher,
      stream,
      store,
      writeRevocations: (rows) => store.insertRevocations(rows),
      processorHooks: processorHooksOf(verifier, leases, logger),
      async flush() {
        await Promise.all([decisions.flush(), credentials.flush()]);
      },
      stop: () => cleanups.run(),
      pendingStops: () => cleanups.pending(),
    };
  } catch (error) {
    await cleanups.run();
    throw error;
  }
}

/** Policy decisions and issued credentials are written in the background, in batches. */
function createRecordWriters(
  store: KillSwitchStore,
  logger: Logger,
): { decisions: BatchWriter<PolicyDecisionRecord>; credentials: BatchWriter<CredentialRecord> } {
  const decisions: BatchWriter<PolicyDecisionRecord> = createBatchWriter({
    name: 'policy_decisions',
    write: (rows) => store.insertDecisions(rows),
    logger,
    intervalMs: 100,
  });
  const credentials: BatchWriter<CredentialRecord> = createBatchWriter({
    name: 'credentials',
    write: (rows) => store.insertCredentials(rows),
    logger,
    intervalMs: 20,
  });
  return { decisions, credentials };
}

/**
 * Subscribes the notifier dispatcher to revocations, alerts (except those of failed verifications, which the
 * verifier notifies itself) and escalations; returns the unsubscribes. Called after every enforcement
 * subscriber: notify() only enqueues, so no destination can delay a kill.
 */
function subscribeNotifications(parts: {
  killSwitch: KillSwitch;
  authority: Authority;
  verifier: Verifier;
  dispatcher: Dispatcher;
  publicUrl: string;
}): (() => void)[] {
  const { killSwitch, authority, verifier, dispatcher, publicUrl } = parts;
  const unsubscribeNotifications = killSwitch.subscribe((message) => {
    if (message.type === 'revocation') dispatcher.notify(fromRevocation(message.revocation, publicUrl));
    else if (!verifier.ownsAlert(message.alert.id)) dispatcher.notify(fromAlert(message.alert, publicUrl));
  });
  const unsubscribeEscalations = authority.subscribe((event) =>
    dispatcher.notify(fromEscalation(event.escalation, publicUrl)),
  );
  return [unsubscribeNotifications, unsubscribeEscalations];
}

/** What the processor calls: events of revoked tasks go to the verifier, task ends release the task's leases. */
function processorHooksOf(verifier: Verifier, leases: LeaseManager, logger: Logger): ProcessorHooks {
  return {
    onRevokedTaskEvent: (event) => verifier.onRevokedTaskEvent(event),
    onTaskEnded(tenant, taskId) {
      leases
        .endTask(tenant, taskId, 'released', 'the task ended')
        .catch((error: unknown) =>
          logger.error({ err: messageOf(error) }, 'ending the leases of a finished task failed'),
        );
    },
  };
}
