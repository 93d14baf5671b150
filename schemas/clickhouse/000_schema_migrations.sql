-- Bootstrap: the database and the ledger of applied migrations.
-- The migrator runs this file before every migrate() (it is idempotent), then the numbered files it has not
-- recorded yet. `{database:Identifier}` is ClickHouse's query-parameter syntax: the migrator substitutes the
-- configured database (default `tripline`); by hand use `clickhouse-client --param_database=tripline`.

CREATE DATABASE IF NOT EXISTS {database:Identifier};

-- One row per applied file. Two processes migrating a server at once may both record a version: the
-- migrator reads the ledger with GROUP BY version, so a repeated row changes nothing.
CREATE TABLE IF NOT EXISTS {database:Identifier}.schema_migrations
(
    version    UInt32 COMMENT 'The file number (001_events.sql is 1)',
    name       String COMMENT 'The file name',
    checksum   String COMMENT 'sha256 of the file as applied (a changed file is reported, never re-run)',
    applied_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree
ORDER BY version;
