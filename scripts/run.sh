#!/usr/bin/env bash
# Start the action server and the Rasa server (or `rasa shell` with `run.sh shell`).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-server}"
port="${RASA_PORT:-5005}"
action_port="${ACTION_PORT:-5055}"
mkdir -p var logs
export SQLALCHEMY_SILENCE_UBER_WARNING=1 TF_CPP_MIN_LOG_LEVEL=2 PYTHONWARNINGS=ignore

console_port="${CONSOLE_PORT:-5006}"
.venv/bin/rasa run actions --actions actions --port "$action_port" > logs/actions.log 2>&1 &
actions_pid=$!
console_pid=""
trap 'kill $actions_pid $console_pid 2>/dev/null || true' EXIT INT TERM
if [ "$mode" != shell ]; then
  WALLET_RASA_URL="http://127.0.0.1:$port" .venv/bin/python -m bot.console --port "$console_port" > logs/console.log 2>&1 &
  console_pid=$!
fi
for _ in $(seq 60); do
  curl -sf "http://127.0.0.1:$action_port/health" >/dev/null && break
  kill -0 $actions_pid 2>/dev/null || { echo "Action server failed, see logs/actions.log"; exit 1; }
  sleep 0.5
done

if [ "$mode" = shell ]; then
  exec_cmd=(.venv/bin/rasa shell -m models/wallet.tar.gz --endpoints endpoints.yml --port "$port")
  "${exec_cmd[@]}"
  exit $?
fi

cat <<MSG
==> 钱包小助手 is starting on http://127.0.0.1:$port (action server on :$action_port)
    Talk to it:
      curl -s -XPOST http://127.0.0.1:$port/webhooks/rest/webhook \\
        -H 'Content-Type: application/json' -d '{"sender":"u1","message":"退款多久到账"}'
    Parse only:  curl -s -XPOST http://127.0.0.1:$port/model/parse -d '{"text":"登陆不上去"}'
    Chat widget demo page: http://127.0.0.1:$port/webhooks/socketio/demo
    Agent console: http://127.0.0.1:$console_port  (create an agent first: .venv/bin/bot agents add 小王)
    REST users get agent replies on their next message or with POST /webhooks/rest/poll {"sender":"u1"}
    Terminal chat: make shell      Stop: Ctrl-C
MSG
.venv/bin/rasa run -m models/wallet.tar.gz --enable-api -i "${RASA_HOST:-127.0.0.1}" --port "$port" \
  --credentials credentials.yml --endpoints endpoints.yml
