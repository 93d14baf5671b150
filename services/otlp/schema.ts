/**
 * The OTLP trace schema: `schemas/otlp/**.proto` (opentelemetry-proto v1.11.0), loaded once with protobufjs. It
 * serves the response bodies (services/otlp/codec.ts) and is the reference codec in tests; requests are decoded
 * and encoded without it (services/otlp/decode-protobuf.ts, services/otlp/encode.ts).
 */
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const SCHEMA_DIR = fileURLToPath(new URL('../../schemas/otlp/', import.meta.url));

function loadSchema(): protobuf.Root {
  const root = new protobuf.Root();
  // Imports inside the .proto files are relative to schemas/otlp/ (like `protoc -I schemas/otlp`).
  root.resolvePath = (_origin: string, target: string): string => SCHEMA_DIR + target;
  root.loadSync(['collector/trace/v1/trace_service.proto', 'google/rpc/status.proto'], { keepCase: false });
  root.resolveAll();
  return root;
}

/** The OTLP trace schema (`schemas/otlp/`) as a protobufjs root, with every type resolved. */
export const otlpSchema: protobuf.Root = loadSchema();
