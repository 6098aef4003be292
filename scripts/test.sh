#!/usr/bin/env bash
# Run the whole test suite on a fresh Debian machine (does its own set-up).
# `ruff check`, then pytest. Viewer tests run under Xvfb, started by pytest-xvfb. Extra arguments
# go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
# lint first: pyflakes/pycodestyle/bugbear mistakes fail the run (pyproject.toml [tool.ruff])
python -m ruff check src tests benchmarks docs scripts
exec python -m pytest "$@"
