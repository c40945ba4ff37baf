#!/bin/sh
# Initialise (or re-initialise for other credentials) the cluster, then run postgres
# in the foreground as PID 1 (setpriv execs, su would fork) so docker stop/kill reach it.
set -eu
BIN=$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)
WANT="$POSTGRES_USER:$POSTGRES_PASSWORD:$POSTGRES_DB"
if [ ! -s "$PGDATA/PG_VERSION" ] || [ "$(cat "$PGDATA/.credentials" 2>/dev/null)" != "$WANT" ]; then
    rm -rf "$PGDATA"
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    chown postgres "$pwfile"
    # initdb refuses to run as root: run it as the postgres user.
    setpriv --reuid=postgres --regid=postgres --init-groups sh -c "$BIN/initdb --no-sync -D '$PGDATA' -U '$POSTGRES_USER' \
        --pwfile='$pwfile' --auth-host=scram-sha-256 --auth-local=trust" >/dev/null
    rm -f "$pwfile"
    echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
    echo "host all all ::/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != "postgres" ]; then
        setpriv --reuid=postgres --regid=postgres --init-groups sh -c "$BIN/postgres --single -D '$PGDATA' -c fsync=off postgres" >/dev/null <<SQL
CREATE DATABASE "$POSTGRES_DB" OWNER "$POSTGRES_USER";
SQL
    fi
    echo "$WANT" > "$PGDATA/.credentials"
    chown postgres "$PGDATA/.credentials"
fi
[ "${1:-}" = "--init-only" ] && exit 0
mkdir -p /var/run/postgresql && chown postgres:postgres /var/run/postgresql
exec setpriv --reuid=postgres --regid=postgres --init-groups "$BIN/postgres" -D "$PGDATA" \
    -c listen_addresses='*' -c fsync=off -c synchronous_commit=off -c full_page_writes=off
