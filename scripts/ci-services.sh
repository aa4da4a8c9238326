#!/usr/bin/env bash
# Makes sure the services the tests talk to answer on loopback, installing
# and starting them from Debian's packages when they are missing, and
# prints the environment the tests read them from (KEY=value lines on
# stdout; progress on stderr):
#
#   TAKUMO_TEST_DATABASE_URL   PostgreSQL for the coordinator store suite
#   TAKUMO_E2E_REDIS           Redis for the rate-limit service e2e test
#
# A service that already answers is used as it is (values already in the
# environment win). Runs as root on CI machines.
set -euo pipefail

log() { echo "ci-services: $*" >&2; }
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_up() {
  for _ in $(seq 1 60); do
    up "$1" && return 0
    sleep 0.5
  done
  log "port $1 did not open"
  return 1
}
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq >&2; APT_UPDATED=1; fi
  apt-get install -y -qq --no-install-recommends "$@" </dev/null >&2
}

# PostgreSQL
db_url=${TAKUMO_TEST_DATABASE_URL:-}
if [ -z "$db_url" ]; then
  if up 5432; then
    # The machines this project runs on have trust auth and a database
    # named test.
    db_url="postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
    log "PostgreSQL already running"
  else
    log "installing and starting PostgreSQL"
    command -v pg_ctlcluster >/dev/null 2>&1 || apt_install postgresql
    ver=$(ls /etc/postgresql | sort -V | tail -1)
    pg_ctlcluster "$ver" main start >&2 || true
    wait_up 5432
    pw="takumo-ci-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
    runuser -u postgres -- psql -q -c "ALTER USER postgres PASSWORD '$pw'" >&2
    runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 ||
      runuser -u postgres -- createdb test >&2
    db_url="postgres://postgres:$pw@127.0.0.1:5432/test?sslmode=disable"
  fi
fi
echo "TAKUMO_TEST_DATABASE_URL=$db_url"

# Redis
redis=${TAKUMO_E2E_REDIS:-}
if [ -z "$redis" ]; then
  if ! up 6379; then
    log "installing and starting Redis"
    command -v redis-server >/dev/null 2>&1 || apt_install redis-server
    redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes >&2
    wait_up 6379
  else
    log "Redis already running"
  fi
  redis=127.0.0.1:6379
fi
echo "TAKUMO_E2E_REDIS=$redis"
