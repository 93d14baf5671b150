-- Model calls (GenAI chat / text_completion / generate_content / embeddings spans and their OpenLLMetry and
-- OpenInference equivalents): the tokens each used, its model, the task it was counted for and what it cost by the
-- price table of the processor that counted it (docs/budgets.md). One row per call; sorted by (tenant, task_id, id)
-- so a replayed call collapses; reads use FINAL. Kept as long as events (90 days after ingestion).

CREATE TABLE IF NOT EXISTS {database:Identifier}.model_usage
(
    id            String COMMENT 'trace id + span id of the model-call span',
    tenant        LowCardinality(String),
    task_id       String,
    task_type     LowCardinality(String),
    agent_id      String,
    trace_id      String,
    time          DateTime64(6, 'UTC') COMMENT 'When the call ended',
    operation     LowCardinality(String) COMMENT 'chat, text_completion, generate_content or embeddings',
    model         LowCardinality(String),
    provider      LowCardinality(String),
    input_tokens  UInt64,
    output_tokens UInt64,
    cost_usd      Float64,
    priced        Bool COMMENT 'The model is in the price table (else priced at its fallback)',
    ingested_at   DateTime64(6, 'UTC') DEFAULT now64(6),
    INDEX time_minmax time TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(time)
ORDER BY (tenant, task_id, id)
TTL toDateTime(ingested_at) + INTERVAL 90 DAY;
