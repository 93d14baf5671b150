import { describe, expect, it } from 'vitest';
import { mcpGatewayEnabled, readMcpGatewayConfig } from '../../../services/mcp-gateway/config.ts';
import { loadConfig } from '../../../services/app/config.ts';
import { TriplineError } from '../../../services/shared/errors.ts';

const TOKEN = 'desk-client-token-0123456789abcdef';

function failure(env: Record<string, string>): TriplineError {
  try {
    readMcpGatewayConfig(env);
  } catch (error) {
    if (error instanceof TriplineError) return error;
    throw error;
  }
  throw new Error('expected CONFIG_INVALID');
}

describe('the MCP gateway configuration', () => {
  it('is off by default, with documented defaults', () => {
    const config = readMcpGatewayConfig({});
    expect(mcpGatewayEnabled(config)).toBe(false);
    expect(config).toMatchObject({
      servers: {},
      clients: [],
      host: '127.0.0.1',
      port: 8090,
      publicUrl: 'http://localhost:8090',
      allowedOrigins: [],
      sessionIdleMs: 900_000,
      apiUrl: 'http://localhost:8080',
      otlpUrl: 'http://localhost:4318',
      apiToken: undefined,
    });
    expect(loadConfig({}).mcpGateway.servers).toEqual({});
  });

  it('reads HTTP and stdio upstreams and bound clients', () => {
    const config = readMcpGatewayConfig({
      TRIPLINE_MCP_SERVERS: JSON.stringify({
        github: { url: 'https://mcp.example/mcp', headers: { Authorization: 'Bearer upstream-secret' } },
        files: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '/tmp'], env: { A: 'b' } },
      }),
      TRIPLINE_MCP_CLIENTS: JSON.stringify([
        { name: 'desk', token: TOKEN, agentId: 'desk-assistant', taskType: 'support' },
      ]),
      TRIPLINE_PUBLIC_URL: 'https://tripline.example/',
      TRIPLINE_AGENT_TOKEN: 'agent-token-0123456789abcdefgh',
    });
    expect(mcpGatewayEnabled(config)).toBe(true);
    expect(config.servers).toEqual({
      github: { kind: 'http', url: 'https://mcp.example/mcp', headers: { Authorization: 'Bearer upstream-secret' } },
      files: {
        kind: 'stdio',
        command: 'npx',
        args: ['-y', '@modelcontextprotocol/server-filesystem', '/tmp'],
        env: { A: 'b' },
        cwd: undefined,
      },
    });
    expect(config.clients).toEqual([
      {
        name: 'desk',
        token: TOKEN,
        tenant: 'default',
        agentId: 'desk-assistant',
        taskType: 'support',
        tools: [],
        resources: [],
        scopes: [],
      },
    ]);
    expect(config.apiUrl).toBe('https://tripline.example');
    expect(config.apiToken).toBe('agent-token-0123456789abcdefgh');
  });

  it('stops start-up naming the variable, never showing a secret', () => {
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ TRIPLINE_MCP_SERVERS: '{' }, 'TRIPLINE_MCP_SERVERS', /not JSON/],
      [{ TRIPLINE_MCP_SERVERS: '{"a b": {"url": "http://x"}}' }, 'TRIPLINE_MCP_SERVERS', /bad name/],
      [{ TRIPLINE_MCP_SERVERS: '{"a": {"url": "ftp://x"}}' }, 'TRIPLINE_MCP_SERVERS', /a\.url is not an http/],
      [{ TRIPLINE_MCP_SERVERS: '{"a": {}}' }, 'TRIPLINE_MCP_SERVERS', /needs a "url" or a "command"/],
      [
        { TRIPLINE_MCP_SERVERS: '{"a": {"url": "http://x", "headers": {"Mcp-Session-Id": "s"}}}' },
        'TRIPLINE_MCP_SERVERS',
        /may not set/,
      ],
      [
        { TRIPLINE_MCP_CLIENTS: JSON.stringify([{ name: 'd', token: 'short', agentId: 'a', taskType: 't' }]) },
        'TRIPLINE_MCP_CLIENTS',
        /24\+ characters/,
      ],
      [
        { TRIPLINE_MCP_CLIENTS: JSON.stringify([{ name: 'd', token: TOKEN, taskType: 't' }]) },
        'TRIPLINE_MCP_CLIENTS',
        /agentId/,
      ],
      [
        {
          TRIPLINE_MCP_CLIENTS: JSON.stringify(
            [1, 2].map((n) => ({ name: `d${String(n)}`, token: TOKEN, agentId: 'a', taskType: 't' })),
          ),
        },
        'TRIPLINE_MCP_CLIENTS',
        /used twice/,
      ],
      [{ TRIPLINE_MCP_PORT: '70000' }, 'TRIPLINE_MCP_PORT', /0 to 65535/],
      [{ TRIPLINE_MCP_SESSION_IDLE_MS: '5' }, 'TRIPLINE_MCP_SESSION_IDLE_MS', /10000 to/],
      [{ TRIPLINE_MCP_API_TOKEN: 'x y' }, 'TRIPLINE_MCP_API_TOKEN', /24 characters/],
    ];
    for (const [env, variable, problem] of cases) {
      const error = failure(env);
      expect(error.code).toBe('CONFIG_INVALID');
      expect(error.details.variable, JSON.stringify(env)).toBe(variable);
      expect(error.message).toMatch(problem);
      expect(error.message).not.toContain(TOKEN);
    }
    const withSecret = failure({
      TRIPLINE_MCP_SERVERS: '{"a": {"url": "http://x", "headers": {"Authorization": "Bearer s3cret"}, "x": 1}}',
    });
    expect(withSecret.message).not.toContain('s3cret');
  });
});
