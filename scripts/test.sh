#!/usr/bin/env bash
# Every test, cheapest first, so that a broken unit fails in seconds and not after training:
#   1. ruff over bot actions tests scripts                              (make lint)
#   2. the fast lane: every pytest test that needs no model, server, browser or PostgreSQL
#   3. FAQ/domain/NLU checks and Rasa's data validation                 (make check validate)
#   4. training, only when the training data changed                    (make model)
#   5. the rest of pytest: the trained model, real servers, Chromium, PostgreSQL
#   6. Rasa's test stories (tests/test_stories.yml)
# Steps 1-4 stop the run when they fail. `scripts/test.sh --fast` runs step 2 only (make test-fast).
# Further arguments go to pytest (both lanes). pytest's exit 5 (no tests collected) is a failure
# here: a test run must test.
set -uo pipefail
umask 077  # what this creates is the owner's only (docs/trust.md)
cd "$(dirname "$0")/.."
export SQLALCHEMY_SILENCE_UBER_WARNING=1 TF_CPP_MIN_LOG_LEVEL=2 PYTHONWARNINGS=ignore
mkdir -p reports

# The markers of the tests that need a resource (pyproject.toml). The lanes are this expression
# and its negation, so together they run exactly the tests of one plain `pytest` run, each once
# (tests/test_markers.py reads this line).
resources="model or server or browser or postgres"

fast=0
if [ "${1:-}" = "--fast" ]; then
  fast=1; shift
fi

run_pytest() {  # run_pytest <lane name> <marker expression> [pytest args...]
  local lane=$1 expr=$2 start rc
  shift 2
  echo "==> pytest, $lane lane: -m \"$expr\""
  start=$(date +%s)
  .venv/bin/python -m pytest -p no:cacheprovider -rs -m "$expr" "$@"
  rc=$?
  if [ $rc -eq 5 ]; then
    echo "ERROR: pytest collected no tests in the $lane lane"; rc=1
  fi
  echo "==> $lane lane: exit $rc in $(( $(date +%s) - start )) s"
  return $rc
}

if [ $fast -eq 1 ]; then
  run_pytest fast "not ($resources)" "$@"
  exit $?
fi

status=0
echo "==> ruff check bot actions tests scripts"
.venv/bin/ruff check bot actions tests scripts || status=1
run_pytest fast "not ($resources)" "$@" || status=1
if [ $status -ne 0 ]; then
  echo "FAILED before training: fix the lint errors / fast tests above first"; exit $status
fi

"${MAKE:-make}" --no-print-directory check validate || { echo "FAILED: make check validate"; exit 1; }
scripts/train_if_changed.sh || { echo "FAILED: training"; exit 1; }

run_pytest slow "$resources" "$@" || status=1

echo "==> rasa test core: tests/test_stories.yml"
out=reports/test_stories
.venv/bin/rasa test core --stories tests/test_stories.yml -m models/wallet.tar.gz \
  --out "$out" --fail-on-prediction-errors > "$out.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  tail -40 "$out.log"; cat "$out/failed_test_stories.yml" 2>/dev/null
  echo "FAILED: rasa test stories (see $out.log)"; status=1
else
  echo "rasa test stories: all conversations passed"
fi
exit $status
