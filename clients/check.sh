#!/usr/bin/env bash
# Builds real clients from the served OpenAPI document, as a frontend team would:
#  - TypeScript: openapi-typescript generates the types, `tsc --noEmit` type-checks
#    clients/ts/journey.ts against them;
#  - Python: openapi-python-client generates a package, mypy --strict type-checks
#    clients/python/journey.py against it, and the journey runs against a live
#    `wijkbudget serve` holding the demo data.
# A change to the API that breaks either client fails here. Versions are pinned in
# clients/ts/package-lock.json and clients/python/uv.lock.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/.venv/bin"
WORK="$(mktemp -d)"
SERVER_PID=""

cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== a live server with the demo data"
export DATABASE_URL="sqlite:///$WORK/clients.db" ENVIRONMENT=development
(cd "$WORK" && "$BIN/wijkbudget" demo > demo.txt)
PORT="$("$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
(cd "$WORK" && exec "$BIN/wijkbudget" serve --host 127.0.0.1 --port "$PORT" > server.log 2>&1) &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -fsS "$BASE/healthz" > /dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.2
done
curl -fsS "$BASE/openapi.json" -o "$WORK/openapi.json"

echo "== TypeScript client (openapi-typescript + tsc)"
cd "$ROOT/clients/ts"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
OPENAPI_JSON="$WORK/openapi.json" npm run --silent generate
npx --no-install tsc --noEmit -p .
echo "journey.ts type-checks"

echo "== Python client (openapi-python-client + mypy + a live run)"
# Its own environment, locked in clients/python/uv.lock (see the pyproject there).
UV="$(command -v uv || echo "$ROOT/.uv/bin/uv")"
TOOLS="$ROOT/clients/python/.venv"
UV_PROJECT_ENVIRONMENT="$TOOLS" "$UV" sync --frozen --quiet --project "$ROOT/clients/python"
cd "$WORK"
"$TOOLS/bin/python" "$ROOT/clients/python/anonymous_alternatives.py" openapi.json openapi-python.json
"$TOOLS/bin/openapi-python-client" generate --path openapi-python.json \
    --config "$ROOT/clients/python/config.yaml" --meta none --output-path pyclient/wijkbudget_client > generate.log
MYPYPATH="$WORK/pyclient" "$TOOLS/bin/mypy" --config-file "$ROOT/clients/python/mypy.ini" \
    --cache-dir "$WORK/.mypy_cache" "$ROOT/clients/python/journey.py"
PYTHONPATH="$WORK/pyclient" "$TOOLS/bin/python" "$ROOT/clients/python/journey.py" \
    "$BASE" admin@oosterpark.example oosterpark-demo
