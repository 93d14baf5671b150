-- Approval points: calls a policy says need a person (docs/approvals.md). One row per approval and state change
-- (the highest version is current), and every step of every approval in order, for the audit and the task's
-- timeline.
CREATE TABLE IF NOT EXISTS {database:Identifier}.approvals
(
    id              String,
    tenant          LowCardinality(String),
    task_id         String,
    task_type       LowCardinality(String),
    agent_id        String,
    tool            String,
    resource        String,
    arguments       String COMMENT 'The canonical JSON of the call''s arguments',
    binding_hash    String COMMENT 'SHA-256 of tenant, task, tool, resource and arguments',
    status          LowCardinality(String) COMMENT 'pending, approved, denied, expired or used',
    policies        Array(String) COMMENT 'The policies that asked for a person',
    reasons         Array(String),
    decision_id     String COMMENT 'The policy decision that asked for it (policy_decisions.id)',
    requested_at    DateTime64(6, 'UTC'),
    expires_at      DateTime64(6, 'UTC'),
    decided_at      Nullable(DateTime64(6, 'UTC')),
    decided_by      String,
    decision_reason String,
    used_at         Nullable(DateTime64(6, 'UTC')),
    version         UInt64,
    updated_at      DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (tenant, id);

-- Every step of an approval: requested, approved, denied, expired, used. A step happens once per approval.
CREATE TABLE IF NOT EXISTS {database:Identifier}.approval_steps
(
    tenant      LowCardinality(String),
    approval_id String,
    task_id     String,
    step        LowCardinality(String),
    time        DateTime64(6, 'UTC'),
    actor       String,
    reason      String
)
ENGINE = ReplacingMergeTree
ORDER BY (tenant, task_id, approval_id, step);
