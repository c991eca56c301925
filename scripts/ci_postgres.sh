#!/usr/bin/env bash
# Starts a throwaway PostgreSQL for CI and prints its admin DSN as the LAST line of stdout, so
# callers can do: AEGIS_TEST_PG_DSN="$(scripts/ci_postgres.sh | tail -n 1)".
# Everything else (apt, initdb, pg_ctl chatter, the data dir) goes to stderr. Nothing is
# registered for cleanup: CI machines are thrown away. Running it again while the server is
# up only prints the DSN.
set -euo pipefail

port="${AEGIS_PG_PORT:-55432}"
dsn="postgres://postgres@127.0.0.1:${port}/postgres"

log() { printf 'ci_postgres: %s\n' "$*" >&2; }

# The newest installed major version wins; `sort -V` so that 9.6 < 15.
pg_bin_dir() {
  local ctl
  ctl="$(printf '%s\n' /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n 1)"
  if [[ -x "$ctl" ]]; then dirname "$ctl"; fi
}

# PostgreSQL refuses to run as root, so the server runs as the `postgres` OS user when we are
# root, and as ourselves otherwise (the superuser role is named `postgres` either way).
as_pg() {
  if [[ "$(id -u)" -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

bin="$(pg_bin_dir)"
if [[ -z "$bin" ]]; then
  if [[ "$(id -u)" -ne 0 ]]; then
    log "PostgreSQL is not installed and we are not root; install the postgresql package first"
    exit 1
  fi
  log "installing postgresql from Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y postgresql >&2
  bin="$(pg_bin_dir)"
  if [[ -z "$bin" ]]; then
    log "postgresql installed but no pg_ctl under /usr/lib/postgresql/*/bin"
    exit 1
  fi
fi

if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
  log "a server is already listening on 127.0.0.1:${port}; reusing it"
  printf '%s\n' "$dsn"
  exit 0
fi

base="$(mktemp -d "${TMPDIR:-/tmp}/aegis-pg.XXXXXX")"
data="$base/data"
if [[ "$(id -u)" -eq 0 ]]; then chown postgres: "$base"; fi
chmod 700 "$base"
log "data dir: $data"

# Trust auth is acceptable only because the server listens on loopback and dies with the VM.
as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-locale >&2

# The socket goes in our own dir: /var/run/postgresql may not exist or not be writable. Durability
# is switched off because nothing here outlives the job.
as_pg "$bin/pg_ctl" -D "$data" -l "$base/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p ${port} -k ${base} -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >&2

for _ in $(seq 1 60); do
  if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
    printf '%s\n' "$dsn"
    exit 0
  fi
  sleep 0.5
done
log "server did not become ready; log follows"
cat "$base/server.log" >&2
exit 1
