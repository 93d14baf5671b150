/** Protobuf wire format shared by the OTLP encoder and decoder: wire types and tags. */

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_START_GROUP = 3;
export const WIRE_END_GROUP = 4;
export const WIRE_I32 = 5;

export const tag = (field: number, wire: number): number => (field << 3) | wire;
/** `ExportTraceServiceRequest.resource_spans` (field 1, length-delimited). */
export const TAG_LEN_1 = 10; /* 1:len */
