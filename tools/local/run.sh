#!/usr/bin/env bash
# Starts the local stack (moto's SQS, the simulator unless PUBLISHER_BASE_URL is set, and the dev
# gateway with embedded DynamoDB) and stops all of it on Ctrl-C or SIGTERM.
set -euo pipefail

APP_PORT=${APP_PORT:-3000}
MOTO_PORT=${MOTO_PORT:-5000}
SIM_PORT=${SIM_PORT:-4010}
SIM_CONTROL_PORT=${SIM_CONTROL_PORT:-4011}
export DYNAMODB_PORT=${DYNAMODB_PORT:-8000}
export ISSUER_PORT=${ISSUER_PORT:-4020}
export PUBLISHER_API_KEY=${PUBLISHER_API_KEY:-sk_local}
export WEBHOOK_SECRETS=${WEBHOOK_SECRETS:-local-webhook-secret}
export LOG_FORMAT=${LOG_FORMAT:-text}
# The reconciler watches the service's subscription that delivers here (switched back on, replayed).
export WEBHOOK_PUBLIC_URL=${WEBHOOK_PUBLIC_URL:-http://127.0.0.1:$APP_PORT/webhooks/zernio}
export LOCAL_DATA_DIR=${LOCAL_DATA_DIR:-.local}
mkdir -p "$LOCAL_DATA_DIR"

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Every port this stack would listen on, checked before anything starts: a clash stops it here,
# naming the variable, before it registers a webhook anywhere.
ports=(APP_PORT)
[[ -z "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]] && ports+=(DYNAMODB_PORT)
[[ -z "${AWS_ENDPOINT_URL_SQS:-}" ]] && ports+=(MOTO_PORT)
[[ -z "${PUBLISHER_BASE_URL:-}" ]] && ports+=(SIM_PORT SIM_CONTROL_PORT)
[[ -z "${LOCAL_JWT_ISSUER:-}" ]] && ports+=(ISSUER_PORT)
declare -A seen=()
for name in "${ports[@]}"; do
  port=${!name}
  if [[ ! "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
    echo "make run: $name=$port is not a port number" >&2
    exit 1
  fi
  if [[ -n "${seen[$port]:-}" ]]; then
    echo "make run: $name and ${seen[$port]} are both $port - give each its own port" >&2
    exit 1
  fi
  seen[$port]=$name
  if listening "$port"; then
    echo "make run: port $port ($name) is already in use - is another 'make run' running? Set $name to a free port." >&2
    exit 1
  fi
done

# Where this stack listens, for `make items`, `make feed`, `make export`, `make redrive` and the
# README's walkthrough (`source .local/stack.env`); removed when it stops. One stack a directory:
# a record whose gateway still answers belongs to a running stack (its data file too).
STACK_ENV="$LOCAL_DATA_DIR/stack.env"
if [[ -f "$STACK_ENV" ]]; then
  other=$(sed -n 's/^APP=//p' "$STACK_ENV")
  if [[ -n "$other" ]] && curl -fsS --max-time 2 "$other/healthz" >/dev/null 2>&1; then
    echo "make run: another 'make run' ($other) keeps its data in LOCAL_DATA_DIR=$LOCAL_DATA_DIR - set LOCAL_DATA_DIR to another directory" >&2
    exit 1
  fi
fi
pids=()
stop() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n "${RECORDED:-}" ]] && rm -f "$STACK_ENV"
  echo "stopped"
}
trap stop EXIT
trap 'exit 0' INT TERM

wait_for() { # port variable, what; the process just started must be the one listening
  local port=${!1}
  for _ in $(seq 1 150); do
    kill -0 "${pids[-1]}" 2>/dev/null || { echo "make run: $2 exited (port $port, $1; see $LOCAL_DATA_DIR/)" >&2; exit 1; }
    listening "$port" && return 0
    sleep 0.2
  done
  echo "make run: $2 did not come up on port $port ($1; see $LOCAL_DATA_DIR/)" >&2
  exit 1
}

if [[ -z "${AWS_ENDPOINT_URL_SQS:-}" ]]; then
  .venv/bin/moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$LOCAL_DATA_DIR/moto.log" 2>&1 &
  pids+=($!)
  wait_for MOTO_PORT "moto (SQS)"
  export AWS_ENDPOINT_URL_SQS="http://127.0.0.1:$MOTO_PORT"
fi
# moto plays EventBridge too (the change feed's bus), on the same port.
export AWS_ENDPOINT_URL_EVENTBRIDGE=${AWS_ENDPOINT_URL_EVENTBRIDGE:-$AWS_ENDPOINT_URL_SQS}
echo "SQS and EventBridge (moto): $AWS_ENDPOINT_URL_SQS"

if [[ -z "${PUBLISHER_BASE_URL:-}" ]]; then
  SIM_PORT=$SIM_PORT SIM_CONTROL_PORT=$SIM_CONTROL_PORT target/debug/zernio-sim &
  pids+=($!)
  wait_for SIM_PORT "the publishing-service simulator"
  wait_for SIM_CONTROL_PORT "the publishing-service simulator's control API"
  export PUBLISHER_BASE_URL="http://127.0.0.1:$SIM_PORT/api"
  SIM_STARTED=1
fi
echo "publishing service: $PUBLISHER_BASE_URL"

AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-local} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-local} \
AWS_REGION=${AWS_REGION:-us-east-1} APP_PORT=$APP_PORT target/debug/dev-gateway &
pids+=($!)
for _ in $(seq 1 150); do
  if curl -fsS "http://127.0.0.1:$APP_PORT/healthz" >/dev/null 2>&1; then break; fi
  kill -0 "${pids[-1]}" 2>/dev/null || { echo "make run: the dev gateway exited (its reason is above)" >&2; exit 1; }
  sleep 0.2
done
if [[ -n "${SIM_STARTED:-}" ]]; then
  # The bundled simulator sends its webhooks here, signed with the first configured secret.
  curl -fsS -X POST "$PUBLISHER_BASE_URL/v1/webhooks/settings" -H "authorization: Bearer $PUBLISHER_API_KEY" \
    -H 'content-type: application/json' \
    -d "{\"name\":\"local\",\"url\":\"http://127.0.0.1:$APP_PORT/webhooks/zernio\",\"secret\":\"${WEBHOOK_SECRETS%%,*}\",\"events\":[],\"isActive\":true}" >/dev/null
  echo "the simulator's webhooks go to http://127.0.0.1:$APP_PORT/webhooks/zernio"
fi
{
  echo "# Where the running 'make run' listens (removed when it stops). source it, or read it."
  echo "APP=http://127.0.0.1:$APP_PORT"
  [[ -z "${LOCAL_JWT_ISSUER:-}" ]] && echo "ISSUER=http://127.0.0.1:$ISSUER_PORT"
  echo "PUBLISHER_BASE_URL=$PUBLISHER_BASE_URL"
  [[ -n "${SIM_STARTED:-}" ]] && echo "SIM_CONTROL=http://127.0.0.1:$SIM_CONTROL_PORT"
  echo "AWS_ENDPOINT_URL_DYNAMODB=${AWS_ENDPOINT_URL_DYNAMODB:-http://127.0.0.1:$DYNAMODB_PORT}"
  echo "AWS_ENDPOINT_URL_SQS=$AWS_ENDPOINT_URL_SQS"
  echo "TABLE_NAME=${TABLE_NAME:-stacc-social}"
  echo "RETRY_QUEUE_NAME=${RETRY_QUEUE_NAME:-stacc-social-retry}"
  echo "DEAD_LETTER_QUEUE_NAME=${DEAD_LETTER_QUEUE_NAME:-stacc-social-retry-dlq}"
  echo "CHANGES_QUEUE_NAME=${CHANGES_QUEUE_NAME:-stacc-social-changes}"
} >"$STACK_ENV"
RECORDED=1
echo
echo "where it listens: $STACK_ENV (make items, make feed, make export and make redrive read it)"
echo "ready: http://127.0.0.1:$APP_PORT/healthz answers 200. Ctrl-C stops everything."
wait -n "${pids[@]}"
