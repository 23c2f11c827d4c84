#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, combined broker+controller) for integration
# tests. Jars come from Maven Central via testkafka/pom.xml and are cached
# outside the repo. Everything binds to 127.0.0.1 only.
#
#   scripts/testkafka.sh fetch              download jars into the cache
#   scripts/testkafka.sh start DIR          start a broker with state in DIR;
#                                           prints "127.0.0.1:PORT" on stdout
#                                           (the PLAINTEXT listener)
#   scripts/testkafka.sh stop DIR           stop it (idempotent)
#   scripts/testkafka.sh run CLASS ARGS...  run a Kafka main class, e.g.
#       org.apache.kafka.tools.TopicCommand --bootstrap-server ADDR --create ...
#
# Listeners (one broker, all on 127.0.0.1):
#   PLAINTEXT  anonymous, and User:ANONYMOUS is a super user, so every test
#              that does not care about security has full access (it is also
#              the inter-broker listener, and the controller's is PLAINTEXT).
#   SASL_SSL   TLS with a throwaway CA, then SASL PLAIN, SCRAM-SHA-256 or
#              SCRAM-SHA-512. StandardAuthorizer with no allow-if-no-ACL
#              fallback: a SASL user may do exactly what ACLs grant it, except
#              User:admin, the other super user.
# One listener for SASL and TLS (not SASL_PLAINTEXT + SSL) because SASL over
# TLS is what production clusters run, and every SASL test then checks the
# certificate too. start writes, beside the data:
#   DIR/bootstrap       PLAINTEXT address
#   DIR/sasl_bootstrap  SASL_SSL address
#   DIR/ca.pem          the CA that signed the server certificate (SAN
#                       IP:127.0.0.1, DNS:localhost)
#   DIR/users           "NAME PASSWORD" lines: admin (super user) and weft (no
#                       ACLs), each with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512
#                       credentials. More SCRAM users can be added at run time
#                       by admin; PLAIN users are fixed (JAAS).
# Certificates and passwords are made on the first start of DIR (openssl,
# random passwords) and kept for restarts; SCRAM credentials are written into
# the metadata log when DIR is formatted (kafka-storage format --add-scram).
#
# Env: WEFT_CACHE_DIR (cache root; default $XDG_CACHE_HOME/weft or
# ~/.cache/weft), WEFT_KAFKA_PORT (fixed PLAINTEXT port; default: a free one),
# WEFT_KAFKA_START_TIMEOUT (seconds to wait for readiness; default 90).
set -euo pipefail

KAFKA_VERSION=4.1.1
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
POM="$REPO_ROOT/testkafka/pom.xml"
CACHE="${WEFT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weft}/kafka-$KAFKA_VERSION"
LIBS="$CACHE/libs"
MARKER="$CACHE/.fetched" # holds the sha256 of the pom the libs were built from
START_TIMEOUT=${WEFT_KAFKA_START_TIMEOUT:-90}
STOP_TIMEOUT=20

die() { echo "testkafka: $*" >&2; exit 1; }

pom_sum() { sha256sum "$POM" | cut -d' ' -f1; }
fetched() { [[ -f "$MARKER" && "$(cat "$MARKER")" == "$(pom_sum)" ]]; }

cmd_fetch() {
  fetched && return 0
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch Kafka jars)"
  mkdir -p "$CACHE"
  # Serialize concurrent fetches (parallel test packages); re-check after
  # waiting, another process may have finished the job.
  exec 9>"$CACHE/.lock"
  flock 9
  if fetched; then exec 9>&-; return 0; fi
  # Copy into a scratch dir and swap it in, so an interrupted fetch never
  # leaves a half-filled libs/ behind a valid marker.
  local tmp="$CACHE/libs.tmp.$$"
  rm -rf "$tmp"
  echo "testkafka: fetching Kafka $KAFKA_VERSION jars into $LIBS" >&2
  mvn -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
    -DoutputDirectory="$tmp" >"$CACHE/fetch.log" 2>&1 \
    || { tail -n 40 "$CACHE/fetch.log" >&2; rm -rf "$tmp"; die "mvn dependency:copy-dependencies failed"; }
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  pom_sum >"$MARKER"
  exec 9>&-
}

# Short-lived tool JVMs: C1 only, which roughly halves their startup time.
TOOL_OPTS=(-Xmx256m -XX:TieredStopAtLevel=1 -Djava.awt.headless=true)

cmd_run() {
  [[ $# -ge 1 ]] || die "usage: run CLASS [ARGS...]"
  cmd_fetch
  java -cp "$LIBS/*" "${TOOL_OPTS[@]}" "$@"
}

# port_open and free_port.
# shellcheck source=scripts/ports.sh
source "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

# broker_pid DIR: print the PID from DIR/broker.pid if that process is still
# our broker (alive, not a zombie, running kafka.Kafka for this DIR).
broker_pid() {
  local pid state
  pid=$(cat "$1/broker.pid" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ "$state" != Z ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $1/server.properties" || return 1
  echo "$pid"
}

# make_secrets DIR: on the first start of DIR, a throwaway CA, a server
# certificate for 127.0.0.1/localhost signed by it, and random passwords.
# EC P-256 keys: generated in milliseconds, unlike RSA.
make_secrets() {
  local dir=$1 tls=$1/tls
  if [[ ! -s "$dir/users" ]]; then
    printf 'admin %s\nweft %s\n' "$(password)" "$(password)" >"$dir/users.tmp"
    mv "$dir/users.tmp" "$dir/users"
  fi
  [[ -s "$tls/server.pem" && -s "$dir/ca.pem" ]] && return 0
  command -v openssl >/dev/null || die "openssl not found (needed for the test broker's TLS certificate)"
  rm -rf "$tls"
  mkdir -p "$tls"
  (
    cd "$tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -keyout ca.key -out ca.pem -subj "/CN=weft test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout server.key -out server.csr -subj "/CN=localhost"
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out server.crt
    # Kafka's PEM key store: the PKCS#8 key, then the chain.
    cat server.key server.crt ca.pem >server.pem
    rm -f ca.key server.csr ca.srl
  ) >"$dir/tls.log" 2>&1 || { cat "$dir/tls.log" >&2; die "making the test TLS certificates failed"; }
  cp "$tls/ca.pem" "$dir/ca.pem"
}

# password: 32 random hex digits (safe inside JAAS quotes and SCRAM args).
password() { head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

write_config() { # DIR PORT CONTROLLER_PORT SASL_PORT
  local dir=$1 port=$2 cport=$3 sport=$4 plain_users="" u pw
  while read -r u pw; do plain_users+=" user_$u=\"$pw\""; done <"$dir/users"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$port,SASL_SSL://127.0.0.1:$sport,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,SASL_SSL://127.0.0.1:$sport
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
# Authorization. PLAINTEXT and CONTROLLER clients are User:ANONYMOUS, a super
# user, so the other tests and the broker itself keep full access. SASL users
# get what ACLs grant (no allow.everyone.if.no.acl.found), admin everything.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS;User:admin
allow.everyone.if.no.acl.found=false
# SASL_SSL: TLS with the throwaway certificate, then PLAIN (users fixed here)
# or SCRAM (credentials in the metadata log).
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$dir/tls/server.pem
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required$plain_users;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
# Static quorum: the voter set lives in this file, not in the metadata log,
# so the controller port may differ between restarts of the same DIR.
controller.quorum.voters=1@127.0.0.1:$cport
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
  cat >"$dir/log4j2.properties" <<EOF
status = warn
# Let Kafka's own shutdown hook log to the end instead of log4j stopping first.
shutdownHook = disable
appender.file.type = File
appender.file.name = file
appender.file.fileName = $dir/broker.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
# Every request the authorizer denies (allowed ones are DEBUG): tests read it
# to prove a client never even tried something its ACLs forbid.
appender.authz.type = File
appender.authz.name = authz
appender.authz.fileName = $dir/authorizer.log
appender.authz.layout.type = PatternLayout
appender.authz.layout.pattern = [%d] %p %m%n
logger.authz.name = kafka.authorizer.logger
logger.authz.level = INFO
logger.authz.additivity = false
logger.authz.appenderRef.authz.ref = authz
EOF
}

# cluster_id: random 16-byte UUID in Kafka's base64url form (as StorageTool
# random-uuid prints it), made in bash to save a JVM start. Kafka rejects ids
# starting with '-', so retry those.
cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    [[ "$id" != -* ]] && { echo "$id"; return; }
  done
}

# ready PORT DIR: the broker logged its startup, accepts TCP and (if kcat is
# installed) answers a metadata request listing itself.
ready() {
  local port=$1 dir=$2
  grep -q 'Kafka Server started' "$dir/broker.log" 2>/dev/null || return 1
  port_open "$port" || return 1
  if command -v kcat >/dev/null; then
    timeout 10 kcat -L -b "127.0.0.1:$port" -m 5 2>/dev/null | grep -q "broker 1 at 127.0.0.1:$port" || return 1
  fi
}

fail_start() { # DIR MESSAGE
  echo "testkafka: $2; last lines of $1/broker.log:" >&2
  tail -n 40 "$1/broker.log" >&2 2>/dev/null || true
  tail -n 20 "$1/stdout.log" >&2 2>/dev/null || true
  cmd_stop "$1" || true
  exit 1
}

cmd_start() {
  [[ $# -eq 1 ]] || die "usage: start DIR"
  mkdir -p "$1"
  local dir port cport sport
  dir=$(cd "$1" && pwd)
  broker_pid "$dir" >/dev/null && die "a broker is already running for $dir"
  cmd_fetch
  port=${WEFT_KAFKA_PORT:-$(free_port)}
  port_open "$port" && die "port $port is already in use"
  cport=$(free_port)
  [[ "$cport" != "$port" ]] || cport=$(free_port)
  sport=$(free_port)
  while [[ "$sport" == "$port" || "$sport" == "$cport" ]]; do sport=$(free_port); done
  make_secrets "$dir"
  write_config "$dir" "$port" "$cport" "$sport"
  rm -f "$dir/bootstrap" "$dir/sasl_bootstrap" "$dir/broker.pid"
  # Keep the previous run's log for debugging; readiness greps a fresh one.
  if [[ -s "$dir/broker.log" ]]; then mv "$dir/broker.log" "$dir/broker.log.prev"; fi
  : >"$dir/broker.log"

  # Format once; a restart on the same DIR keeps its data and cluster id.
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    [[ -f "$dir/cluster.id" ]] || cluster_id >"$dir/cluster.id"
    local scram=() u pw
    while read -r u pw; do
      scram+=(--add-scram "SCRAM-SHA-256=[name=$u,password=$pw]" --add-scram "SCRAM-SHA-512=[name=$u,password=$pw]")
    done <"$dir/users"
    java -cp "$LIBS/*" "${TOOL_OPTS[@]}" "-Dlog4j2.configurationFile=$dir/log4j2.properties" \
      kafka.tools.StorageTool format -t "$(cat "$dir/cluster.id")" \
      -c "$dir/server.properties" "${scram[@]}" >"$dir/format.log" 2>&1 \
      || { cat "$dir/format.log" >&2; die "KRaft storage format failed"; }
  fi

  # setsid: own session/process group, no controlling terminal, so the broker
  # outlives the caller's shell. bash writes its own PID, then execs java into
  # it, so broker.pid is the JVM's PID.
  # shellcheck disable=SC2016 # expanded by the inner bash, on purpose
  setsid bash -c 'echo $$ >"$1/broker.pid.tmp" && mv "$1/broker.pid.tmp" "$1/broker.pid"; shift; exec "$@"' _ "$dir" \
    java -cp "$LIBS/*" -Xms128m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true "-Dlog4j2.configurationFile=$dir/log4j2.properties" \
    kafka.Kafka "$dir/server.properties" </dev/null >"$dir/stdout.log" 2>&1 &

  local deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    sleep 0.25
    if [[ -f "$dir/broker.pid" ]] && ! broker_pid "$dir" >/dev/null; then
      fail_start "$dir" "broker exited during startup"
    fi
    if ready "$port" "$dir" && port_open "$sport"; then
      echo "127.0.0.1:$sport" >"$dir/sasl_bootstrap"
      echo "127.0.0.1:$port" >"$dir/bootstrap"
      echo "127.0.0.1:$port"
      return 0
    fi
  done
  fail_start "$dir" "broker not ready after ${START_TIMEOUT}s"
}

cmd_stop() {
  [[ $# -eq 1 ]] || die "usage: stop DIR"
  [[ -d "$1" ]] || return 0
  local dir pid i
  dir=$(cd "$1" && pwd)
  if pid=$(broker_pid "$dir"); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 4; i++)); do
      broker_pid "$dir" >/dev/null || break
      sleep 0.25
    done
    if broker_pid "$dir" >/dev/null; then
      echo "testkafka: broker $pid ignored SIGTERM for ${STOP_TIMEOUT}s; killing" >&2
      kill -KILL "$pid" 2>/dev/null || true
      while broker_pid "$dir" >/dev/null; do sleep 0.1; done
    fi
  fi
  rm -f "$dir/broker.pid" "$dir/bootstrap" "$dir/sasl_bootstrap"
}

case "${1:-}" in
  fetch) shift; cmd_fetch "$@" ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  run) shift; cmd_run "$@" ;;
  *) die "usage: $0 {fetch|start DIR|stop DIR|run CLASS [ARGS...]}" ;;
esac
