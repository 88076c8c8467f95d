#!/usr/bin/env bash
# Starts the local stack (moto's SQS, the simulator unless PUBLISHER_BASE_URL is set, and the dev
# gateway with embedded DynamoDB) and stops all of it on Ctrl-C or SIGTERM.
set -euo pipefail

APP_PORT=${APP_PORT:-3000}
MOTO_PORT=${MOTO_PORT:-5000}
SIM_PORT=${SIM_PORT:-4010}
SIM_CONTROL_PORT=${SIM_CONTROL_PORT:-4011}
export PUBLISHER_API_KEY=${PUBLISHER_API_KEY:-sk_local}
export WEBHOOK_SECRETS=${WEBHOOK_SECRETS:-local-webhook-secret}
export LOG_FORMAT=${LOG_FORMAT:-text}
# The reconciler watches the service's subscription that delivers here (switched back on, replayed).
export WEBHOOK_PUBLIC_URL=${WEBHOOK_PUBLIC_URL:-http://127.0.0.1:$APP_PORT/webhooks/zernio}
export LOCAL_DATA_DIR=${LOCAL_DATA_DIR:-.local}
mkdir -p "$LOCAL_DATA_DIR"

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if listening "$APP_PORT"; then
  echo "make run: port $APP_PORT is already in use - is another 'make run' running? (set APP_PORT to use another port)" >&2
  exit 1
fi

pids=()
stop() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped"
}
trap stop EXIT
trap 'exit 0' INT TERM

wait_for() { # port, name
  for _ in $(seq 1 150); do listening "$1" && return 0; sleep 0.2; done
  echo "make run: $2 did not come up on port $1 (see $LOCAL_DATA_DIR/*.log)" >&2
  exit 1
}

if [[ -z "${AWS_ENDPOINT_URL_SQS:-}" ]]; then
  if listening "$MOTO_PORT"; then
    echo "make run: port $MOTO_PORT (SQS) is taken - set MOTO_PORT to use another port" >&2
    exit 1
  fi
  .venv/bin/moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$LOCAL_DATA_DIR/moto.log" 2>&1 &
  pids+=($!)
  wait_for "$MOTO_PORT" "moto (SQS)"
  export AWS_ENDPOINT_URL_SQS="http://127.0.0.1:$MOTO_PORT"
fi
# moto plays EventBridge too (the change feed's bus), on the same port.
export AWS_ENDPOINT_URL_EVENTBRIDGE=${AWS_ENDPOINT_URL_EVENTBRIDGE:-$AWS_ENDPOINT_URL_SQS}
echo "SQS and EventBridge (moto): $AWS_ENDPOINT_URL_SQS"

if [[ -z "${PUBLISHER_BASE_URL:-}" ]]; then
  SIM_PORT=$SIM_PORT SIM_CONTROL_PORT=$SIM_CONTROL_PORT target/debug/zernio-sim &
  pids+=($!)
  wait_for "$SIM_PORT" "the publishing-service simulator"
  export PUBLISHER_BASE_URL="http://127.0.0.1:$SIM_PORT/api"
  SIM_STARTED=1
fi
echo "publishing service: $PUBLISHER_BASE_URL"

AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-local} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-local} \
AWS_REGION=${AWS_REGION:-us-east-1} APP_PORT=$APP_PORT target/debug/dev-gateway &
pids+=($!)
for _ in $(seq 1 150); do
  if curl -fsS "http://127.0.0.1:$APP_PORT/healthz" >/dev/null 2>&1; then break; fi
  kill -0 "${pids[-1]}" 2>/dev/null || { echo "make run: the dev gateway exited" >&2; exit 1; }
  sleep 0.2
done
if [[ -n "${SIM_STARTED:-}" ]]; then
  # The bundled simulator sends its webhooks here, signed with the first configured secret.
  curl -fsS -X POST "$PUBLISHER_BASE_URL/v1/webhooks/settings" -H "authorization: Bearer $PUBLISHER_API_KEY" \
    -H 'content-type: application/json' \
    -d "{\"name\":\"local\",\"url\":\"http://127.0.0.1:$APP_PORT/webhooks/zernio\",\"secret\":\"${WEBHOOK_SECRETS%%,*}\",\"events\":[],\"isActive\":true}" >/dev/null
  echo "the simulator's webhooks go to http://127.0.0.1:$APP_PORT/webhooks/zernio"
fi
echo
echo "ready: http://127.0.0.1:$APP_PORT/healthz answers 200. Ctrl-C stops everything."
wait -n "${pids[@]}"
