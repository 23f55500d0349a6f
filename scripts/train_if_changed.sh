#!/usr/bin/env bash
# Train only when the training inputs changed since the last model (or with FORCE=1).
# FAQ answers (data/faq.yml) and entity word lists are read at run time: editing them needs no training.
set -euo pipefail
umask 077  # what this creates is the owner's only (docs/trust.md)
cd "$(dirname "$0")/.."
model=models/wallet.tar.gz
fingerprint_file=models/.fingerprint
# The inputs and their fingerprint: bot/training/inputs.py (the FAQ loop's retrain job uses the same).
fingerprint="$(.venv/bin/python -m bot model-fingerprint)"
if [ "${FORCE:-0}" != 1 ] && [ -f "$model" ] && [ "$(cat "$fingerprint_file" 2>/dev/null)" = "$fingerprint" ]; then
  echo "==> Model is up to date ($model)"
  exit 0
fi
echo "==> Training (data or pipeline changed)"
start=$(date +%s)
.venv/bin/rasa train --config config.yml --domain domain.yml --data data/nlu data/rules data/stories \
  --out models --fixed-model-name wallet --force
echo "$fingerprint" > "$fingerprint_file"
echo "==> Trained in $(( $(date +%s) - start )) s -> $model"
