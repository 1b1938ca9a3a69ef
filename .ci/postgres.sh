#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the store tests and print the
# shell line that points them at it:
#     eval "$(.ci/postgres.sh)"
# It installs nothing: it needs Debian's postgresql package (initdb and
# pg_ctl under /usr/lib/postgresql/*/bin).  The cluster lives in a fresh
# temporary directory, listens on 127.0.0.1 only (and a socket in that
# directory), on a free port, with a random password.  As root it runs the
# server as the postgres user; otherwise as the current user.  Stop it (and
# delete its directory) with the command printed as
# CONFERENCE_TEST_POSTGRES_STOP, that is `.ci/postgres.sh --stop DIR`.
set -euo pipefail

as_server=()
if [ "$(id -u)" = 0 ]; then
    as_server=(runuser -u postgres --)
fi

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    echo "postgres.sh: no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)" >&2
    exit 1
fi

if [ "${1:-}" = --stop ]; then
    dir=${2:?usage: postgres.sh --stop DIR}
    "${as_server[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    rm -rf "$dir"
    exit 0
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/conference-pg.XXXXXX")
chmod 700 "$dir"
if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir"
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
printf '%s\n' "$password" > "$dir/pwfile"
if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir/pwfile"
fi

"${as_server[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" \
    -A scram-sha-256 -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
rm -f "$dir/pwfile"
"${as_server[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }

PGPASSWORD=$password "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres conference_test

echo "export CONFERENCE_TEST_POSTGRES='postgresql://postgres:$password@127.0.0.1:$port/conference_test'"
script=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
echo "export CONFERENCE_TEST_POSTGRES_STOP='$script --stop $dir'"
