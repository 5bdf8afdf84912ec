#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite on 2 processes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/pytest -n 2 -q -p no:cacheprovider tests
