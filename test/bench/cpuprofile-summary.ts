/**
 * Summarizes a V8 `.cpuprofile` (from `node --cpu-prof`): self time by function and by area (Tripline's
 * decoder, classification, publisher, fastify, kafkajs, Node internals, GC), idle time left out.
 *
 *   node test/bench/cpuprofile-summary.ts <file.cpuprofile> [top=25] [skipMs=0]
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  /** Sampled busy time (not idle), ms. */
  busyMs: number;
  functions: { name: string; where: string; selfMs: number; share: number }[];
  areas: { area: string; selfMs: number; share: number }[];
}

/** The part of the program a frame belongs to. */
export function areaOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(program)') return 'V8/native (program)';
  if (url === '') return functionName.startsWith('(') ? functionName : 'native/builtins';
  if (url.includes('/services/otlp/')) return 'Tripline OTLP decoder/encoder (services/otlp)';
  if (url.includes('/services/api/otlp-receiver.ts')) return 'Tripline receiver (otlp-receiver.ts)';
  if (url.includes('/services/core/classify.ts')) return 'Tripline classification (classify.ts)';
  if (url.includes('/services/bus/kafka/publisher.ts')) return 'Tripline Kafka publisher (bus/kafka/publisher.ts)';
  if (url.includes('/services/gateway/')) return 'Tripline gateway (other)';
  if (
    url.includes('/node_modules/fastify') ||
    url.includes('/node_modules/find-my-way') ||
    url.includes('/node_modules/avvio') ||
    url.includes('/node_modules/light-my-request')
  )
    return 'fastify';
  if (url.includes('/node_modules/pino')) return 'pino';
  if (url.includes('/node_modules/kafkajs')) return 'kafkajs';
  if (url.includes('/node_modules/protobufjs')) return 'protobufjs';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0] ?? ''}`;
  if (url.includes('/node_modules/')) return `npm:${url.split('/node_modules/').pop()?.split('/')[0] ?? '?'}`;
  if (url.includes('/work/') || url.startsWith('file:')) return 'Tripline (other)';
  return url;
}

/** `skipMs`: leave out the samples of the profile's first milliseconds (start-up, warm-up). */
export function summarize(profile: CpuProfile, top = 25, skipMs = 0): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<number, number>();
  let at = profile.startTime;
  const from = profile.startTime + skipMs * 1000;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (at < from) continue;
    const id = profile.samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + delta);
  }
  const functions = new Map<string, { name: string; where: string; selfMs: number }>();
  const areas = new Map<string, number>();
  let busy = 0;
  for (const [id, micros] of self) {
    const node = byId.get(id);
    if (node === undefined || node.callFrame.functionName === '(idle)') continue;
    const ms = micros / 1000;
    busy += ms;
    const where =
      node.callFrame.url === ''
        ? ''
        : `${node.callFrame.url.replace(/^file:\/\/.*?\/(node_modules|collectors|services|test)\//, '$1/')}:${String(node.callFrame.lineNumber + 1)}`;
    const key = `${node.callFrame.functionName}@${where}`;
    const entry = functions.get(key) ?? {
      name: node.callFrame.functionName === '' ? '(anonymous)' : node.callFrame.functionName,
      where,
      selfMs: 0,
    };
    entry.selfMs += ms;
    functions.set(key, entry);
    const area = areaOf(node.callFrame);
    areas.set(area, (areas.get(area) ?? 0) + ms);
  }
  return {
    busyMs: busy,
    functions: [...functions.values()]
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, top)
      .map((entry) => ({ ...entry, share: entry.selfMs / busy })),
    areas: [...areas.entries()]
      .map(([area, selfMs]) => ({ area, selfMs, share: selfMs / busy }))
      .sort((a, b) => b.selfMs - a.selfMs),
  };
}

export function formatSummary(summary: ProfileSummary): string {
  const pct = (share: number): string => `${(share * 100).toFixed(1).padStart(5)}%`;
  const lines = [`busy ${summary.busyMs.toFixed(0)} ms sampled`, '', 'by area (self time):'];
  for (const area of summary.areas) lines.push(`  ${pct(area.share)}  ${area.area}`);
  lines.push('', 'top functions (self time):');
  for (const fn of summary.functions) lines.push(`  ${pct(fn.share)}  ${fn.name}  ${fn.where}`);
  return lines.join('\n');
}

if (import.meta.main) {
  const [file, top, skip] = process.argv.slice(2);
  if (file === undefined) {
    console.error('usage: node test/bench/cpuprofile-summary.ts <file.cpuprofile> [top=25] [skipMs=0]');
    process.exit(2);
  }
  console.log(
    formatSummary(
      summarize(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, Number(top ?? 25), Number(skip ?? 0)),
    ),
  );
}
