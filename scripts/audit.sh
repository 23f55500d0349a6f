#!/usr/bin/env bash
# `make audit`: pip-audit over requirements.lock, in its own venv (pip-audit needs newer packages
# than Rasa 3.6 allows). Writes reports/audit.json and a summary; exit 1 on a known vulnerability,
# 2 when nothing could be checked (the vulnerability service is unreachable).
set -euo pipefail
umask 077  # what this creates is the owner's only (docs/trust.md)
cd "$(dirname "$0")/.."
tools=var/tools/audit
if [ ! -x "$tools/bin/pip-audit" ] || [ requirements-audit.lock -nt "$tools/bin/pip-audit" ]; then
  py="$(scripts/find_python.sh)"
  rm -rf "$tools" && "$py" -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check -r requirements-audit.lock 2>&1 | { grep -v "is ignored: it is neither" || true; }
fi
mkdir -p reports
rm -f reports/audit.json
# pip-audit's own exit code says "found something"; the summary below decides what that means.
"$tools/bin/pip-audit" -r requirements.lock --no-deps --disable-pip --progress-spinner off \
  --vulnerability-service "${AUDIT_SERVICE:-pypi}" -f json -o reports/audit.json || true
exec .venv/bin/python -m bot audit-report reports/audit.json docs/audit-exceptions.yml
