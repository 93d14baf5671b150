/**
 * What a deployment of docker-compose.yml supplies in .env (or the shell): the secrets the file requires (it has
 * no defaults for them) and the tokens the tests use. Test values only.
 */
export const COMPOSE_ADMIN_TOKEN = 'compose-admin-token-0123456789abcdef';
export const COMPOSE_AGENT_TOKEN = 'compose-agent-token-0123456789abcdef';

export const COMPOSE_SECRETS: Readonly<Record<string, string>> = {
  CLICKHOUSE_PASSWORD: 'compose-clickhouse-password-0123',
  GRAFANA_CLICKHOUSE_PASSWORD: 'compose-grafana-reader-password-0123',
  GRAFANA_ADMIN_PASSWORD: 'compose-grafana-admin-password-0123',
  TRIPLINE_ADMIN_TOKEN: COMPOSE_ADMIN_TOKEN,
  TRIPLINE_AGENT_TOKEN: COMPOSE_AGENT_TOKEN,
  TRIPLINE_COUNTERPARTY_KEY: 'compose-counterparty-key-0123456789',
  KAFKA_ADMIN_PASSWORD: 'compose-kafka-admin-0123456789',
  KAFKA_GATEWAY_PASSWORD: 'compose-kafka-gateway-0123456789',
  KAFKA_PROCESSOR_PASSWORD: 'compose-kafka-processor-0123456789',
  KAFKA_API_PASSWORD: 'compose-kafka-api-0123456789',
};
