-- Just-in-time secrets: the built-in encrypted secret store, and the leases tasks hold on secrets.

-- The built-in provider's secrets, encrypted with AES-256-GCM (key: TRIPLINE_SECRETS_KEY or
-- <data dir>/keys/secrets.key). The plaintext never reaches ClickHouse.
CREATE TABLE IF NOT EXISTS {database:Identifier}.secrets
(
    tenant      LowCardinality(String),
    name        String,
    version     UInt64 COMMENT 'Higher wins, a delete is a row with deleted = true',
    ciphertext  String COMMENT 'base64',
    iv          String COMMENT 'base64, 12 bytes',
    tag         String COMMENT 'base64, the GCM authentication tag',
    key_id      String COMMENT 'sha256 prefix of the key that encrypted it',
    deleted     Bool,
    updated_at  DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (tenant, name);

-- One row per lease and state change; the highest version is current.
CREATE TABLE IF NOT EXISTS {database:Identifier}.leases
(
    id           String,
    tenant       LowCardinality(String),
    task_id      String,
    task_type    LowCardinality(String),
    agent_id     String,
    secret       String,
    provider     LowCardinality(String) COMMENT 'builtin or webhook',
    provider_ref String COMMENT 'The provider''s own id for the lease (empty for builtin)',
    status       LowCardinality(String) COMMENT 'active, released, expired, revoked or revoke_failed',
    issued_at    DateTime64(6, 'UTC'),
    expires_at   DateTime64(6, 'UTC'),
    ended_at     Nullable(DateTime64(6, 'UTC')),
    end_reason   String,
    version      UInt64,
    updated_at   DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (tenant, id);
