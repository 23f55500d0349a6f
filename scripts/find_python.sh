#!/usr/bin/env bash
# Print the path of a Python 3.10 interpreter (Rasa 3.6 runs on 3.8-3.10 only).
# Looks on PATH, then in pyenv's versions, then in the usual system places.
set -u
candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
candidates+=(python3.10)
pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
if command -v pyenv >/dev/null 2>&1; then
  pyenv_root="$(pyenv root 2>/dev/null || echo "$pyenv_root")"
fi
for d in "$pyenv_root"/versions/3.10*; do
  [ -x "$d/bin/python3.10" ] && candidates+=("$d/bin/python3.10")
done
candidates+=(/usr/bin/python3.10 /usr/local/bin/python3.10 python3)
for c in "${candidates[@]}"; do
  p="$(command -v "$c" 2>/dev/null)" || continue
  if "$p" -c 'import sys, venv; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' >/dev/null 2>&1; then
    echo "$p"; exit 0
  fi
done
cat >&2 <<'MSG'
ERROR: Python 3.10 not found.
Rasa Open Source 3.6 runs on Python 3.8-3.10 only (not 3.11+).
Install it, for example with pyenv:   pyenv install 3.10.13
or Debian/Ubuntu:                     apt-get install python3.10 python3.10-venv
or point to one:                      make run PYTHON=/path/to/python3.10
MSG
exit 1
