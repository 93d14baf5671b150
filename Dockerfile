# Tripline: one image for every role. Node 24 runs the TypeScript sources directly (type stripping), so there
# is no build step. The default command is the embedded mode (`npm start`); docker-compose.yml runs the
# distributed roles with `node services/app/gateway-main.ts`, `processor-main.ts` and `api-main.ts`.
#
#   docker build -t tripline:0.1.0 .
#   docker run -p 4318:4318 -p 8080:8080 -v tripline-data:/data tripline:0.1.0
#
# The base is Debian (glibc): the embedded ClickHouse engine (chdb) ships a glibc build only.
FROM node:24.21.0-bookworm-slim

ENV NODE_ENV=production \
    TRIPLINE_DATA_DIR=/data

WORKDIR /app

# Dependencies first, so a source change does not reinstall them. Dev dependencies (TypeScript, vitest, the
# `node` package the repository uses locally) are left out: the image's Node 24 runs the sources.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
    && npm cache clean --force

COPY . .

RUN mkdir -p /data && chown node:node /data
USER node

# OTLP/HTTP receiver (gateway role, embedded mode) and the HTTP API + console (api role, embedded mode).
EXPOSE 4318 8080
VOLUME ["/data"]

CMD ["node", "services/app/main.ts"]
