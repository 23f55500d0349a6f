#!/usr/bin/env bash
# Every test: pytest (unit, store on SQLite and PostgreSQL, model, real servers) and Rasa's
# test stories. pytest's exit 5 (no tests collected) is a failure here: a test run must test.
set -uo pipefail
cd "$(dirname "$0")/.."
export SQLALCHEMY_SILENCE_UBER_WARNING=1 TF_CPP_MIN_LOG_LEVEL=2 PYTHONWARNINGS=ignore
mkdir -p reports
status=0

.venv/bin/python -m pytest -p no:cacheprovider -rs "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "ERROR: pytest collected no tests"; rc=1
fi
[ $rc -ne 0 ] && status=$rc

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
