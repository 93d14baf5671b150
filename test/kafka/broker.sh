#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft, combined broker+controller) for tests,
# run from jars that Maven fetches from Maven Central (see pom.xml next to this file).
#
#   test/kafka/broker.sh fetch    copy the jars into the cache (nothing to do when cached)
#   test/kafka/broker.sh start    fetch if needed, format a fresh log dir, start, wait until ready,
#                                 print KAFKA_BROKERS=127.0.0.1:<port>
#   test/kafka/broker.sh stop     SIGTERM, wait, SIGKILL after a timeout; idempotent
#   test/kafka/broker.sh status   exit 0 and print KAFKA_BROKERS=... when running, else exit 3
#
# Environment (all optional):
#   KAFKA_PORT             client listener on 127.0.0.1 (default 39092)
#   KAFKA_CONTROLLER_PORT  KRaft controller listener (default KAFKA_PORT+1)
#   TRIPLINE_KAFKA_CACHE   jar cache (default ~/.cache/tripline/kafka-<version>)
#   TRIPLINE_KAFKA_STATE   config, data, logs, pid (default /tmp/tripline-kafka-<port>)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker to answer (default 90)
#   KAFKA_STOP_TIMEOUT     seconds between SIGTERM and SIGKILL (default 30)
#   KAFKA_HEAP_OPTS        JVM heap flags (default -Xms256m -Xmx512m)
#   KAFKA_AUTO_CREATE_TOPICS  auto.create.topics.enable (default false)
#   KAFKA_SASL_USERS       unset (default): the client listener is PLAINTEXT, no authentication, no ACLs.
#                          Set to `admin=<password>,<user>=<password>,...`: the client listener is SASL_PLAINTEXT
#                          with SCRAM-SHA-256 for these users (created at format time), ACLs are enforced
#                          (StandardAuthorizer, nothing allowed without an ACL) and the first user is the super
#                          user (it also authenticates the probe).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
POM="$HERE/pom.xml"

KAFKA_VERSION=$(sed -n 's:.*<kafka\.version>\(.*\)</kafka\.version>.*:\1:p' "$POM" | head -n 1)
[[ -n "$KAFKA_VERSION" ]] || { echo "broker.sh: no <kafka.version> in $POM" >&2; exit 1; }

KAFKA_PORT=${KAFKA_PORT:-39092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}
CACHE=${TRIPLINE_KAFKA_CACHE:-$HOME/.cache/tripline/kafka-$KAFKA_VERSION}
STATE=${TRIPLINE_KAFKA_STATE:-/tmp/tripline-kafka-$KAFKA_PORT}
START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}
AUTO_CREATE=${KAFKA_AUTO_CREATE_TOPICS:-false}
SASL_USERS=${KAFKA_SASL_USERS:-}
SASL_ADMIN=${SASL_USERS%%,*}
SASL_ADMIN_NAME=${SASL_ADMIN%%=*}
SASL_ADMIN_PASSWORD=${SASL_ADMIN#*=}

PID_FILE="$STATE/kafka.pid"
LOG_DIR="$STATE/logs"
BROKERS="127.0.0.1:$KAFKA_PORT"
# Marker written last by `fetch`: the pom's checksum, so editing the pom refetches.
MARKER="$CACHE/.tripline-fetched"

log() { echo "broker.sh: $*" >&2; }
die() { log "$*"; exit 1; }

need_tools() {
  local missing=()
  for tool in "$@"; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
  if ((${#missing[@]})); then
    die "not found on PATH: ${missing[*]}; install openjdk-17-jre-headless and maven, or set KAFKA_BROKERS to use an existing cluster"
  fi
  if [[ " $* " == *" java "* ]]; then
    local major
    major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')
    if [[ -n "$major" && "${major%%.*}" -lt 17 ]] 2>/dev/null; then
      die "Kafka $KAFKA_VERSION needs Java 17 or newer, found $major: install openjdk-17-jre-headless, or set KAFKA_BROKERS to use an existing cluster"
    fi
  fi
}

pom_sum() { sha256sum "$POM" | cut -d' ' -f1; }
cached() { [[ -f "$MARKER" && "$(cat "$MARKER")" == "$(pom_sum)" ]]; }

cmd_fetch() {
  if cached; then
    log "Kafka $KAFKA_VERSION jars already in $CACHE"
    return 0
  fi
  need_tools java mvn
  local parent
  parent=$(dirname "$CACHE")
  mkdir -p "$parent"
  # Serialise concurrent fetches of the same cache (fd 9 is closed again below, so the
  # broker started afterwards does not inherit the lock).
  exec 9>"$CACHE.lock"
  if command -v flock >/dev/null 2>&1; then flock 9; fi
  if cached; then
    exec 9>&-
    log "Kafka $KAFKA_VERSION jars already in $CACHE"
    return 0
  fi
  local tmp
  tmp=$(mktemp -d "$parent/.kafka-fetch.XXXXXX")
  chmod 755 "$tmp"
  log "fetching Kafka $KAFKA_VERSION jars with Maven into $CACHE"
  if ! mvn -B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" >"$tmp/.mvn.log" 2>&1; then
    cat "$tmp/.mvn.log" >&2
    rm -rf "$tmp"
    die "mvn could not fetch Kafka $KAFKA_VERSION (see above)"
  fi
  rm -f "$tmp/.mvn.log"
  ls "$tmp"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1 || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after mvn"; }
  pom_sum >"$tmp/.tripline-fetched"
  rm -rf "$CACHE"
  mv "$tmp" "$CACHE"
  exec 9>&-
  log "fetched $(find "$CACHE" -name '*.jar' | wc -l) jars ($(du -sh "$CACHE" | cut -f1))"
}

# The pid from the pid file when that process is alive and is our broker, else nothing.
broker_pid() {
  [[ -f "$PID_FILE" ]] || return 0
  local pid
  pid=$(cat "$PID_FILE" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  # Guard against a recycled pid: the process must be kafka.Kafka on our state dir.
  if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $STATE/server.properties"; then
    echo "$pid"
  fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

node_bin() {
  if [[ -x "$ROOT/node_modules/.bin/node" ]]; then echo "$ROOT/node_modules/.bin/node"
  elif command -v node >/dev/null 2>&1; then command -v node
  fi
}

# One probe process that retries until its deadline: kafkajs admin connect + listTopics
# (a real Metadata request) when kafkajs is installed, else Kafka's own
# BrokerApiVersionsCommand (Metadata + ApiVersions), once a second.
# Returns 0 when ready, 1 on timeout, 2 if the broker process died.
wait_ready() {
  local pid=$1 deadline=$(($(date +%s) + START_TIMEOUT)) node
  node=$(node_bin)
  # The TCP port opens before request processing is enabled, so this only saves probes.
  until port_open "$KAFKA_PORT"; do
    kill -0 "$pid" 2>/dev/null || return 2
    (($(date +%s) < deadline)) || return 1
    sleep 0.2
  done
  if [[ -n "$node" && -f "$ROOT/node_modules/kafkajs/package.json" ]]; then
    local left=$((deadline - $(date +%s)))
    ((left > 0)) || return 1
    KAFKAJS="$ROOT/node_modules/kafkajs" BROKERS="$BROKERS" DEADLINE_MS=$((left * 1000)) BROKER_PID="$pid" \
      SASL_USER="$SASL_ADMIN_NAME" SASL_PASSWORD="$SASL_ADMIN_PASSWORD" \
      "$node" --no-warnings -e '
        const { Kafka, logLevel } = require(process.env.KAFKAJS);
        const deadline = Date.now() + Number(process.env.DEADLINE_MS);
        const sasl = process.env.SASL_USER === "" ? undefined
          : { mechanism: "scram-sha-256", username: process.env.SASL_USER, password: process.env.SASL_PASSWORD };
        const alive = () => { try { process.kill(Number(process.env.BROKER_PID), 0); return true; } catch { return false; } };
        (async () => {
          let last = "";
          while (Date.now() < deadline) {
            if (!alive()) process.exit(2);
            const admin = new Kafka({ clientId: "tripline-kafka-ready", brokers: [process.env.BROKERS],
              logLevel: logLevel.NOTHING, connectionTimeout: 1000, requestTimeout: 3000,
              retry: { retries: 0 }, ...(sasl === undefined ? {} : { sasl }) }).admin();
            try {
              await admin.connect();
              await admin.listTopics();
              const { brokers } = await admin.describeCluster();
              if (brokers.length > 0) { await admin.disconnect(); process.exit(0); }
              last = "no brokers in metadata";
            } catch (e) { last = String(e && e.message || e); }
            await admin.disconnect().catch(() => {});
            await new Promise((r) => setTimeout(r, 250));
          }
          console.error("broker.sh: last probe error: " + last);
          process.exit(1);
        })();' && return 0 || return $?
  fi
  [[ -z "$SASL_USERS" ]] || die "KAFKA_SASL_USERS needs kafkajs (node_modules) for the readiness probe"
  while (($(date +%s) < deadline)); do
    kill -0 "$pid" 2>/dev/null || return 2
    if java -Xmx128m -XX:TieredStopAtLevel=1 -cp "$CACHE/*" \
        org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "$BROKERS" \
        >/dev/null 2>&1; then
      return 0
    fi
    sleep 1
  done
  return 1
}

write_config() {
  cat >"$STATE/server.properties" <<EOF
# Written by test/kafka/broker.sh: single combined broker+controller KRaft node for tests.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
# Dynamic KRaft quorum of one, formatted with StorageTool format --standalone.
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
log.dirs=$STATE/data

# One node: every internal topic has one replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1
num.partitions=1

# Tests: join consumer groups at once; topics must be created explicitly, as in production,
# so a misspelt topic fails instead of silently appearing with one partition.
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=$AUTO_CREATE
EOF
  if [[ -n "$SASL_USERS" ]]; then
    # SASL/SCRAM on the client listener and ACLs (KAFKA_SASL_USERS). The controller listener stays PLAINTEXT on
    # 127.0.0.1 (KRaft cannot authenticate it with SCRAM: the credentials live in the metadata it serves); its
    # principal, ANONYMOUS, is the broker talking to its own controller, hence a super user.
    sed -i -e "s|^listeners=PLAINTEXT://|listeners=SASL_PLAINTEXT://|" \
      -e "s|^advertised.listeners=PLAINTEXT://|advertised.listeners=SASL_PLAINTEXT://|" \
      -e "s|^listener.security.protocol.map=.*|listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT|" \
      -e "s|^inter.broker.listener.name=.*|inter.broker.listener.name=SASL_PLAINTEXT|" "$STATE/server.properties"
    cat >>"$STATE/server.properties" <<EOF

# KAFKA_SASL_USERS: SCRAM-SHA-256 clients, ACLs enforced.
sasl.enabled.mechanisms=SCRAM-SHA-256
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-256
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$SASL_ADMIN_NAME" password="$SASL_ADMIN_PASSWORD";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:$SASL_ADMIN_NAME;User:ANONYMOUS
EOF
  fi
  cat >"$STATE/log4j2.properties" <<'EOF'
# Written by test/kafka/broker.sh. Kafka 4.x logs through SLF4J 1.7 -> log4j-slf4j-impl -> Log4j 2.
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/${sys:tripline.log.name:-server}.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
logger.zookeeper.name = org.apache.zookeeper
logger.zookeeper.level = WARN
EOF
}

print_tail() {
  local f
  for f in "$LOG_DIR/server.log" "$LOG_DIR/stdout.log"; do
    [[ -s "$f" ]] || continue
    log "---- last 40 lines of $f ----"
    tail -n 40 "$f" >&2
  done
}

cmd_start() {
  local pid
  pid=$(broker_pid)
  if [[ -n "$pid" ]]; then
    log "broker already running (pid $pid, state $STATE); reusing it"
    wait_ready "$pid" || { local rc=$?; print_tail; die "running broker (pid $pid) did not answer on $BROKERS (probe rc $rc)"; }
    echo "KAFKA_BROKERS=$BROKERS"
    return 0
  fi
  local port
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if port_open "$port"; then
      die "127.0.0.1:$port is already in use by a process that is not the broker of $STATE; stop it, or choose KAFKA_PORT / TRIPLINE_KAFKA_STATE, or set KAFKA_BROKERS to use an existing cluster"
    fi
  done
  cmd_fetch
  need_tools java

  # Fresh state every start: config, empty log dir, logs. Only ever delete a directory
  # this script made (it holds our server.properties) or an empty one.
  if [[ -d "$STATE" && -n "$(ls -A "$STATE")" ]] && ! grep -qs '^# Written by test/kafka/broker.sh' "$STATE/server.properties"; then
    die "$STATE is not empty and was not made by broker.sh; refusing to delete it (set TRIPLINE_KAFKA_STATE)"
  fi
  rm -rf "$STATE"
  mkdir -p "$STATE/data" "$LOG_DIR"
  write_config

  local jvm_common=(-Djava.awt.headless=true "-Dkafka.logs.dir=$LOG_DIR"
    "-Dlog4j2.configurationFile=$STATE/log4j2.properties")
  # Cluster ids are 16 random bytes in unpadded base64url (what `kafka-storage random-uuid` prints), never starting
  # with '-' (as Kafka's own never do: the storage tool would read it as an option).
  local cluster_id=-
  while [[ "$cluster_id" == -* ]]; do
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
  done
  local scram=() user users
  if [[ -n "$SASL_USERS" ]]; then
    IFS=',' read -ra users <<<"$SASL_USERS"
    for user in "${users[@]}"; do
      [[ "$user" =~ ^[A-Za-z0-9_.-]+=[A-Za-z0-9_.-]+$ ]] || die "KAFKA_SASL_USERS: expected name=password pairs (letters, digits, _.-)"
      scram+=(--add-scram "SCRAM-SHA-256=[name=${user%%=*},password=${user#*=}]")
    done
  fi
  if ! java -Xmx256m -XX:TieredStopAtLevel=1 "${jvm_common[@]}" -Dtripline.log.name=format \
      -cp "$CACHE/*" kafka.tools.StorageTool format --standalone "${scram[@]}" \
      -t "$cluster_id" -c "$STATE/server.properties" >"$LOG_DIR/format.out" 2>&1; then
    cat "$LOG_DIR/format.out" >&2
    die "formatting $STATE/data failed"
  fi

  # shellcheck disable=SC2086 # HEAP_OPTS is a list of flags
  nohup java $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent "${jvm_common[@]}" \
    -cp "$CACHE/*" kafka.Kafka "$STATE/server.properties" \
    </dev/null >"$LOG_DIR/stdout.log" 2>&1 &
  pid=$!
  echo "$pid" >"$PID_FILE"
  log "started Kafka $KAFKA_VERSION (pid $pid), waiting up to ${START_TIMEOUT}s for $BROKERS"

  local t0 rc=0
  t0=$(date +%s%N)
  wait_ready "$pid" || rc=$?
  if ((rc != 0)); then
    print_tail
    if ((rc == 2)); then
      rm -f "$PID_FILE"
      die "the broker exited during start-up (logs in $LOG_DIR)"
    fi
    cmd_stop >/dev/null 2>&1 || true
    die "the broker did not answer on $BROKERS within ${START_TIMEOUT}s (logs in $LOG_DIR)"
  fi
  log "ready in $((($(date +%s%N) - t0) / 1000000)) ms after launch"
  echo "KAFKA_BROKERS=$BROKERS"
}

cmd_stop() {
  local pid
  pid=$(broker_pid)
  if [[ -z "$pid" ]]; then
    rm -f "$PID_FILE"
    log "no broker running for $STATE"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$(($(date +%s) + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && (($(date +%s) < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "broker (pid $pid) still running after ${STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$PID_FILE"
  log "stopped broker (pid $pid)"
}

cmd_status() {
  local pid
  pid=$(broker_pid)
  if [[ -z "$pid" ]]; then
    echo "not running (state $STATE)"
    return 3
  fi
  if port_open "$KAFKA_PORT"; then
    echo "running: pid $pid, Kafka $KAFKA_VERSION, state $STATE"
    echo "KAFKA_BROKERS=$BROKERS"
  else
    echo "starting: pid $pid, port $KAFKA_PORT not open yet (state $STATE)"
    return 4
  fi
}

case "${1:-}" in
  fetch) cmd_fetch ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 fetch|start|stop|status   (Kafka $KAFKA_VERSION, port $KAFKA_PORT)" >&2
    exit 2
    ;;
esac
