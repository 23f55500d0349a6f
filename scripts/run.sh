#!/usr/bin/env bash
# Start the Rasa server and the agent console (`run.sh`), or the terminal chat with its own
# ticket database, the action server and the console (`run.sh shell`).
set -euo pipefail
umask 077  # databases, keys, logs: owner-only (docs/trust.md)
cd "$(dirname "$0")/.."
mode="${1:-server}"
# The ports, one source for every process started here (bot/config.py reads the same variables:
# endpoints.yml's ${ACTION_PORT}, the console's Rasa URL, `bot actions`).
port="${RASA_PORT:-5005}"
action_port="${ACTION_PORT:-5055}"
console_port="${CONSOLE_PORT:-5006}"
export RASA_PORT="$port" ACTION_PORT="$action_port" CONSOLE_PORT="$console_port"
mkdir -p var logs
# Files of older runs (0644 under umask 022) become owner-only too; symlinks are left alone.
chmod -R go-rwx var logs
if [ -d models ] && [ ! -L models ]; then chmod -R go-rwx models; fi
export SQLALCHEMY_SILENCE_UBER_WARNING=1 TF_CPP_MIN_LOG_LEVEL=2 PYTHONWARNINGS=ignore
if [ "$mode" = shell ]; then
  # Local testing never touches the real tickets: the shell, its action server and its console
  # share their own database (WALLET_SHELL_DB_URL to choose another; WALLET_DB_URL is not used).
  shell_db="${WALLET_SHELL_DB_URL:-sqlite:///var/shell.db}"
  export WALLET_DB_URL="$shell_db" WALLET_ACTIONS=server
fi

actions_pid=""
console_pid=""
trap 'kill $actions_pid $console_pid 2>/dev/null || true' EXIT INT TERM
# Rasa runs our actions in-process (bot/serving): `make run` needs no action server. `rasa shell`
# and WALLET_ACTIONS=server call it over HTTP; it answers only requests with the token Rasa gets
# from the endpoints file bot/serving/rasa_cli.py renders (bot/serving/action_server.py).
actions_note="actions run in-process"
if [ "$mode" = shell ] || [ "${WALLET_ACTIONS:-inprocess}" = server ]; then
  nice -n 10 .venv/bin/python -m bot actions --host "${ACTION_HOST:-127.0.0.1}" --port "$action_port" \
    > logs/actions.log 2>&1 &
  actions_pid=$!
  actions_note="action server on :$action_port, token required"
fi
WALLET_RASA_URL="http://127.0.0.1:$port" .venv/bin/python -m bot console --port "$console_port" > logs/console.log 2>&1 &
console_pid=$!
if [ -n "$actions_pid" ]; then
  for _ in $(seq 120); do
    curl -sf "http://127.0.0.1:$action_port/health" >/dev/null && break
    kill -0 $actions_pid 2>/dev/null || { echo "Action server failed, see logs/actions.log"; exit 1; }
    sleep 0.5
  done
fi

if [ "$mode" = shell ]; then
  # Our terminal channel through the REST channel and the hand-off relay (bot/channels/terminal.py),
  # with whatever other channels credentials.yml switches on; the API for the console's replies.
  echo "==> make shell: tickets in $shell_db; agent console http://127.0.0.1:$console_port" \
       "(an agent there: WALLET_DB_URL=$shell_db .venv/bin/bot agents add 小王)"
  .venv/bin/python -m bot rasa shell -m models/wallet.tar.gz --endpoints endpoints.yml -i 127.0.0.1 --port "$port" \
    --credentials credentials.yml --enable-api --wallet-jwt
  exit $?
fi

cat <<MSG
==> 钱包小助手 is starting on http://127.0.0.1:$port ($actions_note)
    Talk to it from this machine (a back end on the host names its users; from a device or
    through a proxy, get a session token first: README.md "Channels"):
      curl -s -XPOST http://127.0.0.1:$port/webhooks/rest/webhook \\
        -H 'Content-Type: application/json' -d '{"sender":"u1","message":"退款多久到账"}'
    Rasa's HTTP API needs our JWT:  TOKEN=\$(.venv/bin/python -m bot token api-token)
      curl -s -XPOST http://127.0.0.1:$port/model/parse -H "Authorization: Bearer \$TOKEN" -d '{"text":"登陆不上去"}'
    Chat widget demo page: http://127.0.0.1:$port/webhooks/socketio/demo
    Agent console: http://127.0.0.1:$console_port  (create an agent first: .venv/bin/bot agents add 小王)
    REST users get agent replies on their next message or with POST /webhooks/rest/poll {"sender":"u1"}
    Terminal chat: make shell      Stop: Ctrl-C
MSG
endpoints=endpoints.yml
workers="${WORKERS:-1}"
if [ "$workers" -gt 1 ]; then
  # Several Sanic workers (one per core) need a lock store all of them see: Redis.
  redis_url="${WALLET_REDIS_URL:-redis://127.0.0.1:6379/1}"
  .venv/bin/python - "$redis_url" <<'PY' || { echo "WORKERS=$workers needs Redis at $redis_url (set WALLET_REDIS_URL)"; exit 1; }
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=2).ping()
PY
  # Each worker pulls the model from the console (GET /model, bot/serving/model_pull.py): a model
  # switch (bot faq retrain, --restore-previous) reaches every worker, not only the one PUT /model hits.
  .venv/bin/python -c "import sys; from bot.serving.lock_store import redis_lock_store_yaml as y; from bot.serving.model_pull import model_server_yaml as m; print(open('endpoints.yml').read() + y(sys.argv[1], 'wallet') + m(sys.argv[2]))" "$redis_url" "http://127.0.0.1:$console_port/model" > var/endpoints.workers.yml
  endpoints=var/endpoints.workers.yml
  # Workers share one listening socket and a kept-alive connection stays with the worker that
  # accepted it: without keep-alive the next request goes to whichever worker is free.
  # WALLET_REDIS_URL: the workers keep their shared state there (dedupe, offered buttons, rate
  # limits, the masker's digit memory: bot/shared_state), so N workers behave like one process.
  export SANIC_WORKERS="$workers" WALLET_SOCKETIO_REDIS="$redis_url" SANIC_KEEP_ALIVE=False \
    WALLET_REDIS_URL="$redis_url"
  echo "==> $workers Sanic workers, Redis lock store and shared state at $redis_url, model pulled from the console every 5 s"
fi
# Rasa's HTTP API only answers requests with our JWT (a token in the query string would land in
# logs): `.venv/bin/python -m bot token api-token` prints one for curl. --wallet-jwt: the secret is
# derived inside the Rasa process, never on a command line (/proc/<pid>/cmdline is public).
.venv/bin/python -m bot rasa run -m models/wallet.tar.gz --enable-api -i "${RASA_HOST:-127.0.0.1}" --port "$port" \
  --credentials credentials.yml --endpoints "$endpoints" --wallet-jwt
