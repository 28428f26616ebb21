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

# Lint, format check, strict type check and the whole test suite (what CI runs)
check: lint fmt-check typecheck test

# Ruff lint
lint: sync
    cd {{api}} && uv run --locked --no-sync ruff check src tests bench

# Format the code and apply safe lint fixes
fmt: sync
    cd {{api}} && uv run --locked --no-sync ruff format src tests bench && uv run --locked --no-sync ruff check --fix src tests bench

# Check formatting without changing files
fmt-check: sync
    cd {{api}} && uv run --locked --no-sync ruff format --check src tests bench

# Strict static type check (mypy --strict over src, tests and bench)
typecheck: sync
    cd {{api}} && uv run --locked --no-sync mypy

# Run the test suite; extra arguments go to pytest (e.g. `just test -k scheduler -x`)
test *args: sync
    cd {{api}} && uv run --locked --no-sync pytest {{args}}
