#!/usr/bin/env bash
# Deployment checks on PostgreSQL, run by .ci/run (and by hand: `make deploy-check`):
#  1. upgrade with data: the previous release (its commit as CHANGELOG.md records it) fills
#     a database (residents, proposals, voting codes, ballots, a published result);
#  2. HEAD migrates it;
#  3. expand/contract: the previous release's server still works on the migrated schema
#     (a whole journey: register, claim a code, cast, publish, receipts);
#  4. HEAD's server answers every digest, results.pb, results.csv and receipt as recorded
#     before the upgrade, and old voting codes still claim;
#  5. backup and restore: pg_dump, restore into a fresh database, HEAD on it answers the same;
#  6. the image: built with podman (ci/image.sh), run against PostgreSQL as in production,
#     non-root, its HEALTHCHECK passing, and the journey through it.
# Needs PostgreSQL on 127.0.0.1:5432 (trust auth) and, for 6, podman (installed if missing).
# SKIP_IMAGE=1 leaves out 6.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PG="${DEPLOY_PG:-postgresql+psycopg://postgres@127.0.0.1:5432}"
PSQL=(psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -q)
WORK="$(mktemp -d)"
PIDS=()
CONTAINER=""
export SECRET_KEY="deploy-check-$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
export ENVIRONMENT=development MAIL_SENDER_INTERVAL_SECONDS=0 MAIL_OUTBOX_DIR="$WORK/outbox"
# Every journey registers residents from 127.0.0.1: above the per-address defaults.
export REGISTER_MAX_PER_ADDRESS=1000 CLAIM_MAX_PER_ADDRESS=1000

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    if [ -n "$CONTAINER" ]; then podman rm -f "$CONTAINER" > /dev/null 2>&1 || true; fi
    if [ -d "$WORK/prev" ]; then git -C "$ROOT" worktree remove --force "$WORK/prev" 2>/dev/null || true; fi
    for db in wb_deploy wb_restore wb_image; do "${PSQL[@]}" -c "DROP DATABASE IF EXISTS $db" test 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

fresh_db() { "${PSQL[@]}" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" test; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_ready() {  # URL PID LOG
    for _ in $(seq 1 300); do
        curl -fsS "$1/healthz" > /dev/null 2>&1 && return 0
        if [ -n "$2" ] && ! kill -0 "$2" 2>/dev/null; then cat "$3" >&2; return 1; fi
        sleep 0.2
    done
    cat "$3" >&2
    return 1
}
# start NAME COMMAND... : runs a server in the background, sets URL and PID
start() {
    local name=$1 port
    shift
    port="$(free_port)"
    "$@" --host 127.0.0.1 --port "$port" > "$WORK/$name.log" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    URL="http://127.0.0.1:$port"
    wait_ready "$URL" "$PID" "$WORK/$name.log"
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; }
smoke() { "$ROOT/.venv/bin/python" "$ROOT/ci/smoke.py" "$@"; }
step() { echo "== deploy: $*"; }

PREV="${PREVIOUS_RELEASE:-$(grep -m1 -oE '^## [0-9][0-9.]* \(cut from [0-9a-f]{7,40}' "$ROOT/CHANGELOG.md" | grep -oE '[0-9a-f]{7,40}$')}"
[ -n "$PREV" ] || { echo "CHANGELOG.md names no release commit" >&2; exit 1; }
step "previous release $PREV: install it from its own lock"
git -C "$ROOT" worktree add -q --detach "$WORK/prev" "$PREV"
make -C "$WORK/prev" -s install > "$WORK/prev-install.log" 2>&1 || { cat "$WORK/prev-install.log"; exit 1; }
OLD="$WORK/prev/.venv/bin"
NEW="$ROOT/.venv/bin"

fresh_db wb_deploy
export DATABASE_URL="$PG/wb_deploy"
ADMIN=admin@deploy.example.org ADMIN_PASSWORD="a deploy-check passphrase"
step "1. the previous release fills a database"
"$OLD/wijkbudget" create-admin --email "$ADMIN" --password "$ADMIN_PASSWORD" > /dev/null
start old "$OLD/wijkbudget" serve
smoke journey "$URL" "$ADMIN" "$ADMIN_PASSWORD" "$WORK/before.json"
stop

step "2. HEAD migrates it"
(cd "$WORK" && "$NEW/wijkbudget" migrate)

step "3. the previous release on the migrated schema (as during a rolling upgrade)"
# Its server only: `serve` would try to migrate a schema it does not know.
start old-on-new "$OLD/uvicorn" app.main:create_app --factory --app-dir "$WORK/prev"
smoke journey "$URL" "$ADMIN" "$ADMIN_PASSWORD" "$WORK/during.json"
smoke verify "$URL" "$WORK/before.json" 0
stop

step "4. HEAD answers what the previous release published"
start new "$NEW/wijkbudget" serve
smoke verify "$URL" "$WORK/before.json" 1
smoke verify "$URL" "$WORK/during.json" 0
smoke journey "$URL" "$ADMIN" "$ADMIN_PASSWORD" "$WORK/after.json"
stop

step "5. backup and restore: pg_dump, then a fresh database"
pg_dump -h 127.0.0.1 -U postgres --format=custom --file "$WORK/backup.dump" wb_deploy
fresh_db wb_restore
pg_restore -h 127.0.0.1 -U postgres --no-owner --dbname wb_restore "$WORK/backup.dump"
export DATABASE_URL="$PG/wb_restore"
start restored "$NEW/wijkbudget" serve
smoke verify "$URL" "$WORK/before.json" 2
smoke verify "$URL" "$WORK/after.json" 0
stop

if [ "${SKIP_IMAGE:-}" = 1 ]; then
    echo "== deploy: image left out (SKIP_IMAGE=1)"
    exit 0
fi
step "6. the image"
bash "$ROOT/ci/image.sh" wijkbudget:ci
fresh_db wb_image
PORT="$(free_port)"
# The host's PostgreSQL is 10.0.2.2 inside slirp4netns with host loopback allowed; runc
# and modest ulimits for machines whose crun cannot manage cgroups.
CONTAINER="$(podman run -d --runtime runc --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
    --network slirp4netns:allow_host_loopback=true -p "127.0.0.1:$PORT:8000" \
    -e DATABASE_URL="postgresql+psycopg://postgres@10.0.2.2:5432/wb_image" \
    -e SECRET_KEY="$SECRET_KEY" -e SMTP_URL="smtp://10.0.2.2:2525" \
    -e FRONTEND_URL="https://stem.example.org" -e MAIL_FROM="Wijkbudget <noreply@example.org>" \
    -e REGISTER_MAX_PER_ADDRESS=1000 -e CLAIM_MAX_PER_ADDRESS=1000 \
    wijkbudget:ci)"
URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 300); do curl -fsS "$URL/healthz" > /dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "$URL/healthz" > /dev/null || { podman logs "$CONTAINER" >&2; exit 1; }
[ "$(podman exec "$CONTAINER" id -u)" = 10001 ] || { echo "the container does not run as uid 10001" >&2; exit 1; }
podman healthcheck run "$CONTAINER" || { echo "HEALTHCHECK failed" >&2; exit 1; }
podman exec -e ADMIN_PASSWORD="$ADMIN_PASSWORD" "$CONTAINER" \
    sh -c 'wijkbudget create-admin --email admin@image.example.org --password "$ADMIN_PASSWORD"' > /dev/null
smoke journey "$URL" admin@image.example.org "$ADMIN_PASSWORD" "$WORK/image.json"
smoke verify "$URL" "$WORK/image.json" 0
SIZE="$(podman image inspect wijkbudget:ci --format '{{.Size}}')"
echo "== deploy: image ok (uid 10001, HEALTHCHECK passing, $((SIZE / 1000000)) MB)"
