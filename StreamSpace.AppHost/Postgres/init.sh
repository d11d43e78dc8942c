#!/usr/bin/env bash
# Creates the local development cluster and its database once; later runs find it and exit at once.
# Usage: init.sh DATA_DIR BIN_DIR DATABASE
set -euo pipefail
data=$1 bin=$2 database=$3

# PostgreSQL refuses to run as root, so as root the cluster belongs to the postgres user.
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ -f "$data/PG_VERSION" ]; then
  echo "PostgreSQL cluster found in $data"
  exit 0
fi

echo "Creating a PostgreSQL cluster in $data"
mkdir -p "$data"
chmod 700 "$data"
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$data"; fi
as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --no-instructions >/dev/null

socket_dir=$(mktemp -d)
chmod 777 "$socket_dir"
as_owner "$bin/pg_ctl" -D "$data" -w -s -o "-c listen_addresses='' -k $socket_dir" start
as_owner "$bin/createdb" -h "$socket_dir" -U postgres "$database"
as_owner "$bin/pg_ctl" -D "$data" -w -s -m fast stop
rmdir "$socket_dir"
echo "Created database $database"
