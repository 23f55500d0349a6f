# 钱包小助手 — `make help` lists the targets. Quick start: `make run`, `make test`.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
RASA  := $(BIN)/rasa
MODEL := models/wallet.tar.gz
EVAL  ?= ../shared/eval/realq.tsv
export PYTHONDONTWRITEBYTECODE := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1

.DEFAULT_GOAL := help
.PHONY: help setup train model run shell actions scale test test-fast lint check validate eval report retrain bench audit clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: ## create .venv (Python 3.10) and install the locked dependencies
	@scripts/setup.sh

model: setup
	@scripts/train_if_changed.sh

train: setup ## train the model (always)
	@FORCE=1 scripts/train_if_changed.sh

run: model ## set up, train if data changed, start Rasa (REST + HTTP API on :5005, actions in-process) and the agent console (:5006); ports: RASA_PORT, CONSOLE_PORT
	@scripts/run.sh

shell: model ## chat in the terminal: rasa shell through the hand-off flow (console on :5006, tickets in var/shell.db)
	@scripts/run.sh shell

scale: model ## scale-out locally: nginx on :8080 before 2 Rasa servers, PostgreSQL + Redis (SCALE_INSTANCES=N)
	@PYTHONWARNINGS=ignore $(BIN)/python -m bot scale

actions: setup ## start only the action server (port 5055; answers only Rasa's token, see docs/trust.md)
	@umask 077; $(BIN)/python -m bot actions --host $${ACTION_HOST:-127.0.0.1} --port $${ACTION_PORT:-5055}

check: setup ## validate FAQ, domain, NLU data and rules
	@$(BIN)/bot faq check

validate: setup ## Rasa's own data validation
	@$(RASA) data validate --domain domain.yml --data data/nlu data/rules data/stories --config config.yml --fail-on-warnings

eval: model ## evaluate on a labelled TSV (EVAL=path; default ../shared/eval/realq.tsv)
	@$(BIN)/bot eval $(EVAL) --model $(MODEL) --out reports

report: setup ## the support lead's dashboard → reports/dashboard/index.html (REPORT_ARGS="--days 30")
	@PYTHONWARNINGS=ignore $(BIN)/python -m bot report $(REPORT_ARGS)

retrain: setup ## after FAQ example changes: fast update, eval compared, switch the running model if not worse
	@PYTHONWARNINGS=ignore $(BIN)/bot faq retrain --wait $(RETRAIN_ARGS)

bench: model ## ours (1 process, 2 workers) vs stock `rasa init` vs scale-out, same run (BENCH_ARGS="--seconds 20")
	@PYTHONWARNINGS=ignore $(BIN)/python -m bot bench $(BENCH_ARGS)

test: setup ## every test: lint + fast lane first (no model), checks, train if needed, model/server tests, stories
	@scripts/test.sh

test-fast: setup ## the tests that need no model, server, browser or PostgreSQL (seconds; no training)
	@scripts/test.sh --fast

lint: setup ## ruff over bot actions tests scripts (bugs and dead code, see pyproject.toml)
	@$(BIN)/ruff check bot actions tests scripts

audit: setup ## pip-audit over requirements.lock (own venv); exit 2 when the vulnerability service is unreachable
	@scripts/audit.sh

clean: ## remove trained models, reports and local databases (keeps .venv)
	rm -rf models reports var .pytest_cache
