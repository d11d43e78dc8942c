#!/usr/bin/env bash
# Runs the local development cluster in the foreground on 127.0.0.1:$PGPORT, as the AppHost's executable resource.
# Usage: run.sh DATA_DIR BIN_DIR
set -euo pipefail
data=$1 bin=$2
: "${PGPORT:?PGPORT is set by the AppHost}"
args=(-D "$data" -c listen_addresses=127.0.0.1 -c port="$PGPORT" -k /tmp)
if [ "$(id -u)" = 0 ]; then
  exec runuser -u postgres -- "$bin/postgres" "${args[@]}"
fi
exec "$bin/postgres" "${args[@]}"
