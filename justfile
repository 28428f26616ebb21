# Tasks for vintagestory-api. Every recipe installs what it needs (`uv sync`) itself.
# On a machine without uv or just, run recipes through ./dev (it installs both from PyPI).

set shell := ["bash", "-euo", "pipefail", "-c"]

api := justfile_directory() / "api"

# List the recipes
default:
    @just --list

# Install the locked dependencies into api/.venv
sync:
    cd {{api}} && uv sync --locked --quiet

# Run the API in the foreground on its embedded defaults (http://127.0.0.1:8080)
serve: sync
    cd {{api}} && exec .venv/bin/python -m vintagestory_api

# Lint, format check, import contracts, strict type check and the whole test suite (what CI runs)
check: lint fmt-check imports typecheck test

# Ruff lint
lint: sync
    cd {{api}} && uv run --locked --no-sync ruff check src tests bench fuzz

# Format the code and apply safe lint fixes
fmt: sync
    cd {{api}} && uv run --locked --no-sync ruff format src tests bench fuzz && uv run --locked --no-sync ruff check --fix src tests bench fuzz

# Check formatting without changing files
fmt-check: sync
    cd {{api}} && uv run --locked --no-sync ruff format --check src tests bench fuzz

# The architecture's import contracts (import-linter; see [tool.importlinter] in api/pyproject.toml)
imports: sync
    cd {{api}} && uv run --locked --no-sync lint-imports --no-cache

# Strict static type check (mypy --strict over src, tests and bench)
typecheck: sync
    cd {{api}} && uv run --locked --no-sync mypy

# Run the test suite on every CPU (pytest-xdist); extra arguments go to pytest (e.g. `just test -k scheduler -x`, `-n 0` for one process)
test *args: sync
    cd {{api}} && uv run --locked --no-sync pytest -n auto {{args}}

# Contract fuzzing with schemathesis (api/fuzz); FUZZ_MAX_EXAMPLES sets examples per operation
fuzz *args: sync
    cd {{api}} && FUZZ_MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-25}" uv run --locked --no-sync pytest fuzz --show-capture=no {{args}}

# Side-by-side benchmarks vs bare baselines (< 5 min; `just bench --quick` about 1 min); see docs/performance.md
bench *args: sync
    cd {{api}} && uv run --locked --no-sync python -m bench {{args}}
