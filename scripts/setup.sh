#!/usr/bin/env bash
# Create .venv with Python 3.10 and install the locked dependencies (idempotent).
set -euo pipefail
umask 077  # what this creates is the owner's only (docs/trust.md)
cd "$(dirname "$0")/.."
stamp=.venv/.installed
if [ -f "$stamp" ] && [ "$stamp" -nt requirements.lock ] && [ "$stamp" -nt pyproject.toml ]; then
  exit 0
fi
py="$(scripts/find_python.sh)"
echo "==> Python: $py ($("$py" --version))"
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))'; then
  rm -rf .venv
  "$py" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip==24.2 setuptools==70.3.0 wheel==0.44.0
echo "==> Installing locked dependencies (first run takes a few minutes)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
.venv/bin/python -m pip check
mkdir -p var models reports
touch "$stamp"
echo "==> Environment ready in .venv"
