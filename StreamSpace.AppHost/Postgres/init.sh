#!/usr/bin/env bash
# Creates the local development cluster and its database once, with password (SCRAM) authentication only; a cluster
# that an earlier version created with trust authentication is converted in place, keeping its data.
# Usage: PGPASSWORD=... init.sh DATA_DIR BIN_DIR DATABASE
# The password comes in the environment, never on a command line (ps would show it to every account).
set -euo pipefail
data=$1 bin=$2 database=$3
: "${PGPASSWORD:?PGPASSWORD is set by the AppHost (the postgres-password parameter)}"
umask 077

# PostgreSQL refuses to run as root, so as root the cluster belongs to the postgres user.
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
owned() { if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$@"; fi; }

# Starts the cluster on a private socket folder only (no TCP), for the setup steps below.
socket_dir=
start_private() {
  socket_dir=$(mktemp -d -t streamspace-pg-init-XXXXXX)
  owned "$socket_dir"
  as_owner "$bin/pg_ctl" -D "$data" -w -s -o "-c listen_addresses='' -k $socket_dir" start
}
stop_private() {
  as_owner "$bin/pg_ctl" -D "$data" -w -s -m fast stop
  rm -rf "$socket_dir"
}

if [ -f "$data/PG_VERSION" ]; then
  # Non-comment lines of pg_hba.conf whose method is trust.
  if grep -Eq '^[[:space:]]*[^#[:space:]].*[[:space:]]trust([[:space:]]|$)' "$data/pg_hba.conf"; then
    echo "PostgreSQL cluster in $data allowed any local account in (trust); converting it to password authentication (scram-sha-256), keeping its data"
    start_private
    trap 'stop_private' EXIT
    # Through stdin, which ps does not show.
    printf "SET password_encryption = 'scram-sha-256';\nALTER ROLE postgres PASSWORD '%s';\n" "${PGPASSWORD//\'/\'\'}" \
      | as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$socket_dir" -U postgres -d postgres >/dev/null
    hba=$(mktemp "$data/pg_hba.conf.XXXXXX")
    sed -E '/^[[:space:]]*(#|$)/!s/([[:space:]])trust([[:space:]]|$)/\1scram-sha-256\2/' "$data/pg_hba.conf" >"$hba"
    owned "$hba"
    chmod 600 "$hba"
    mv "$hba" "$data/pg_hba.conf"
    as_owner "$bin/pg_ctl" -D "$data" -s reload
    # With trust gone, the password (psql reads PGPASSWORD) must now let us in.
    as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$socket_dir" -U postgres -d postgres -c 'SELECT 1' >/dev/null
    if grep -Eq '^[[:space:]]*[^#[:space:]].*[[:space:]]trust([[:space:]]|$)' "$data/pg_hba.conf"; then
      echo "pg_hba.conf in $data still has trust after the conversion" >&2
      exit 1
    fi
  else
    # The AppHost's user secrets hold the password: set it again (it may have been generated anew), in single-user
    # mode, which the cluster's owner may enter without one, reading the statement from stdin.
    printf "ALTER ROLE postgres PASSWORD '%s';\n" "${PGPASSWORD//\'/\'\'}" \
      | as_owner "$bin/postgres" --single -D "$data" -c password_encryption=scram-sha-256 postgres >/dev/null
    echo "PostgreSQL cluster found in $data"
  fi
  exit 0
fi

echo "Creating a PostgreSQL cluster in $data"
mkdir -p "$data"
chmod 700 "$data"
owned "$data"

# initdb reads the superuser's password from a file of mode 0600 that only the cluster owner can read, deleted at once.
pwdir=$(mktemp -d -t streamspace-pg-pw-XXXXXX)
trap 'rm -rf "$pwdir"' EXIT
printf '%s\n' "$PGPASSWORD" >"$pwdir/pwfile"
chmod 600 "$pwdir/pwfile"
owned "$pwdir" "$pwdir/pwfile"
as_owner "$bin/initdb" -D "$data" -U postgres --auth=scram-sha-256 --pwfile="$pwdir/pwfile" --encoding=UTF8 --no-instructions >/dev/null
rm -rf "$pwdir"

start_private
trap 'stop_private' EXIT
as_owner "$bin/createdb" -h "$socket_dir" -U postgres "$database"
echo "Created database $database (password authentication only)"
