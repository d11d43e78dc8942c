#!/usr/bin/env bash
# Runs the local development cluster in the foreground on 127.0.0.1:$PGPORT, as the AppHost's executable resource.
# Its Unix socket goes to a folder of mode 0700 that only the cluster owner can enter, not to /tmp.
# Usage: run.sh DATA_DIR BIN_DIR
set -euo pipefail
data=$1 bin=$2
: "${PGPORT:?PGPORT is set by the AppHost}"

# Beside the data folder; a socket path may be at most 107 bytes, so a deep checkout gets a private folder in /tmp.
socket_dir="$(dirname "$data")/postgres-socket"
if [ $((${#socket_dir} + 20)) -gt 107 ]; then
  socket_dir=$(mktemp -d -t streamspace-pg-XXXXXX)
fi
mkdir -p "$socket_dir"
chmod 700 "$socket_dir"
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$socket_dir"; fi

args=(-D "$data" -c listen_addresses=127.0.0.1 -c port="$PGPORT" -k "$socket_dir")
if [ "$(id -u)" = 0 ]; then
  exec runuser -u postgres -- "$bin/postgres" "${args[@]}"
fi
exec "$bin/postgres" "${args[@]}"
