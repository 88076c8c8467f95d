#!/usr/bin/env bash
# `make smoke` against a fresh `make run` on free ports, as a newcomer would run them one after the
# other: the stack comes up, a token is minted by its development identity provider, the smoke
# checks pass, and the stack is stopped. Part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/../.."

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export APP_PORT=$(free_port) DYNAMODB_PORT=$(free_port) MOTO_PORT=$(free_port) SIM_PORT=$(free_port)
export SIM_CONTROL_PORT=$(free_port) ISSUER_PORT=$(free_port)
export LOCAL_DATA_DIR=$(mktemp -d)
export RECONCILE_INTERVAL_SECONDS=0
log="$LOCAL_DATA_DIR/make-run.log"

setsid bash tools/local/run.sh >"$log" 2>&1 &
stack=$!
stop() { kill -- -"$stack" 2>/dev/null || true; wait "$stack" 2>/dev/null || true; rm -rf "$LOCAL_DATA_DIR"; }
trap stop EXIT

for _ in $(seq 1 300); do
  grep -q '^ready:' "$log" && break
  kill -0 "$stack" 2>/dev/null || { cat "$log"; echo "smoke: make run exited" >&2; exit 1; }
  sleep 0.2
done
grep -q '^ready:' "$log" || { cat "$log"; echo "smoke: make run was not ready within 60 s" >&2; exit 1; }

TOKEN=$(curl -fsS "http://127.0.0.1:$ISSUER_PORT/token?project_id=proj_smoke")
URL="http://127.0.0.1:$APP_PORT" TOKEN="$TOKEN" python3 tools/smoke/smoke.py
