/**
 * The MCP gateway role (services/mcp-gateway/): wired into the embedded mode (the kill switch runtime's authority
 * and checker in-process, spans into the in-process gateway) or run as its own service in the distributed mode
 * (`node services/app/mcp-gateway-main.ts`: the API's JWKS, `/v1/check`, `/v1/tasks` and introspection over HTTP,
 * spans as OTLP to the OTLP receiver, all with an agent token). Off unless TRIPLINE_MCP_SERVERS names a server.
 */
import type { TriplineConfig } from './config.ts';
import type { KillSwitchRuntime } from './killswitch.ts';
import type { Gateway } from '../gateway/gateway.ts';
import { buildMcpGatewayServer } from '../api/mcp-gateway-routes.ts';
import { closeHttpServer } from '../api/http.ts';
import { httpAuthority, inProcessAuthority } from '../mcp-gateway/authority.ts';
import type { McpAuthority } from '../mcp-gateway/authority.ts';
import { mcpGatewayEnabled } from '../mcp-gateway/config.ts';
import { createMcpGateway } from '../mcp-gateway/gateway.ts';
import type { McpGateway } from '../mcp-gateway/gateway.ts';
import { ingestSink, otlpSink } from '../mcp-gateway/span-sink.ts';
import type { SpanSink } from '../mcp-gateway/span-sink.ts';
import { TriplineError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { readTls } from './tls.ts';
import type { TlsMaterial } from './tls.ts';

export interface RunningMcpGateway {
  /** Where the gateway listens, e.g. `http://127.0.0.1:8090`; its servers are at `<url>/mcp/<name>`. */
  url: string;
  gateway: McpGateway;
  stop(): Promise<void>;
}

/** The embedded mode's MCP gateway, or undefined when none is configured. */
export async function startEmbeddedMcpGateway(
  config: Readonly<TriplineConfig>,
  parts: { enforcement: KillSwitchRuntime; gateway: Gateway; logger: Logger; tls: TlsMaterial | undefined },
): Promise<RunningMcpGateway | undefined> {
  if (!mcpGatewayEnabled(config.mcpGateway)) return undefined;
  const logger = parts.logger.child({ service: 'mcp-gateway' });
  const { tokens, checker, authority } = parts.enforcement;
  return listen(
    config,
    inProcessAuthority({ tokens, checker, authority }),
    ingestSink((request, context) => parts.gateway.ingest(request, context), logger),
    logger,
    parts.tls,
  );
}

/** The distributed mode's MCP gateway service (it needs the API and the OTLP receiver, and an agent token). */
export async function startMcpGatewayService(
  config: Readonly<TriplineConfig>,
  baseLogger: Logger,
): Promise<RunningMcpGateway> {
  const settings = config.mcpGateway;
  if (!mcpGatewayEnabled(settings))
    throw new TriplineError(
      'CONFIG_INVALID',
      'TRIPLINE_MCP_SERVERS names no MCP server: the MCP gateway has nothing to serve',
      {
        details: { variable: 'TRIPLINE_MCP_SERVERS' },
      },
    );
  if (settings.apiToken === undefined)
    throw new TriplineError(
      'CONFIG_INVALID',
      'TRIPLINE_MCP_API_TOKEN (or TRIPLINE_AGENT_TOKEN) is unset: the MCP gateway needs an agent token to ask the API and send spans',
      { details: { variable: 'TRIPLINE_MCP_API_TOKEN' } },
    );
  const logger = baseLogger.child({ service: 'mcp-gateway' });
  const authority = httpAuthority({
    apiUrl: settings.apiUrl,
    apiToken: settings.apiToken,
    issuer: config.killSwitch.tokenIssuer,
    audience: config.killSwitch.tokenAudience,
  });
  const sink = otlpSink({ otlpUrl: settings.otlpUrl, token: settings.apiToken, logger });
  return listen(config, authority, sink, logger, readTls(config.tls));
}

async function listen(
  config: Readonly<TriplineConfig>,
  authority: McpAuthority,
  sink: SpanSink,
  logger: Logger,
  tls: TlsMaterial | undefined,
): Promise<RunningMcpGateway> {
  const settings = config.mcpGateway;
  const gateway = createMcpGateway({
    config: settings,
    authority,
    sink,
    issuer: config.killSwitch.tokenIssuer,
    logger,
  });
  const app = buildMcpGatewayServer(gateway, logger, tls);
  let url: string;
  try {
    url = await app.listen({ host: settings.host, port: settings.port });
  } catch (error) {
    await gateway.stop();
    throw error;
  }
  logger.info(
    {
      url,
      servers: Object.keys(settings.servers).map((name) => `${url}/mcp/${name}`),
      clients: settings.clients.length,
    },
    'MCP gateway started',
  );
  let stopping: Promise<void> | undefined;
  return {
    url,
    gateway,
    stop() {
      stopping ??= (async () => {
        // Response streams are ended (the listener first, then the stdio servers' sessions), bound sessions' tasks
        // end, and the spans go out.
        const closing = closeHttpServer(app);
        await gateway.stop();
        await closing;
        await sink.flush();
      })();
      return stopping;
    },
  };
}
