#!/usr/bin/env bash
# The whole test suite: set up if needed, lint, then run every test, doctest and docs example.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m ruff check graphc tests benchmarks
exec .venv/bin/python -m pytest -q "$@"
