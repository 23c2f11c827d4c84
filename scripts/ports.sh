# Sourced by scripts/testkafka.sh and scripts/with-servers.sh.

# port_open PORT: true when something accepts TCP connections on it.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: a port nothing listens on, below the default Linux ephemeral
# range (32768+) so it can't collide with outgoing connections. There is a
# small race until the server binds it; that is acceptable for tests.
free_port() {
  local p i
  for i in $(seq 200); do
    p=$((20000 + RANDOM % 12000))
    port_open "$p" || { echo "$p"; return 0; }
  done
  echo "no free port found" >&2
  return 1
}
