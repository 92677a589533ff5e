#!/usr/bin/env bash
# `npm start`: runs a storage worker on the embedded default (filesystem driver
# `local` at ./data/archive) against the Redis at REDIS_URL. When no Redis
# answers there and the address is this machine, a local redis-server is
# started (data in ./data/redis, AOF on, noeviction), if it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

url="${REDIS_URL:-redis://127.0.0.1:6379}"
export REDIS_URL="$url"

[ -f dist/src/cli/main.js ] || npm run build --silent

status=0
node bin/depot status >/dev/null 2>&1 || status=$?
if [ "$status" = 2 ]; then
  node bin/depot status   # a configuration error: let it say which field
  exit 2
fi
if [ "$status" != 0 ]; then
  hostport="${url#*://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"
  host="${hostport%%:*}"; port="${hostport##*:}"; [ "$port" = "$hostport" ] && port=6379
  case "$host" in 127.0.0.1|localhost) local_redis=yes ;; *) local_redis=no ;; esac
  if [ "$local_redis" = yes ] && command -v redis-server >/dev/null 2>&1; then
    mkdir -p data/redis
    echo "depot: no Redis answers at $url; starting redis-server on $host:$port (data in data/redis)"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --dir "$PWD/data/redis" \
      --appendonly yes --maxmemory-policy noeviction --pidfile "$PWD/data/redis/redis.pid" \
      --logfile "$PWD/data/redis/redis.log"
    for _ in $(seq 1 50); do node bin/depot status >/dev/null 2>&1 && break; sleep 0.1; done
  else
    cat >&2 <<MSG
depot: no Redis answers at $url.
Start one, then run npm start again:
  Debian/Ubuntu:  sudo apt-get install -y redis-server   (it starts on 127.0.0.1:6379)
  macOS:          brew install redis && brew services start redis
  Docker:         docker compose up -d redis
or point REDIS_URL at your Redis, e.g. REDIS_URL=redis://redis.example.org:6379 npm start
MSG
    exit 1
  fi
fi

echo "depot: worker on queue 'depot', archives in ${DEPOT_DATA:-./data/archive}; stop with Ctrl-C"
exec node bin/depot worker
