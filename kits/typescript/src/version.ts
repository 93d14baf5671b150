/**
 * Which version of Tripline's public contract the kit speaks, and the kit's own version.
 *
 * The contract is what an agent and Tripline exchange: OTLP/HTTP ingest with the span conventions
 * (./conventions.ts) and the HTTP API the kit calls (`POST /v1/tasks`, `POST /v1/leases`, `GET /v1/stream`,
 * `POST /v1/check`, `POST /v1/revocations/{id}/ack`). It changes version only when a change would break an agent
 * written against it. The Python kit (`tripline` on PyPI, `kits/python/`) speaks the same one.
 */
import { createRequire } from 'node:module';

export const CONTRACT_VERSION = '1';

/** The package's version (its package.json, one folder up from both `src/` and the built `dist/`). */
export const KIT_VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

/** Sent with every request to Tripline's API, so Tripline (and its logs) can tell which kit and contract called. */
export const USER_AGENT = `tripline-node/${KIT_VERSION} (contract v${CONTRACT_VERSION})`;
