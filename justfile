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
    cd {{api}} && uv run --locked --no-sync pytest -n auto --dist worksteal {{args}}

# Contract fuzzing with schemathesis (api/fuzz); FUZZ_MAX_EXAMPLES sets examples per operation
fuzz *args: sync
    cd {{api}} && FUZZ_MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-25}" uv run --locked --no-sync pytest fuzz --show-capture=no {{args}}

# Side-by-side benchmarks vs bare baselines (< 5 min; `just bench --quick` about 1 min); see docs/performance.md
bench *args: sync
    cd {{api}} && uv run --locked --no-sync python -m bench {{args}}

# Try it without the game: the API with the fake game server, started with it (data in api/.demo-data)
demo: sync
    #!/usr/bin/env bash
    set -euo pipefail
    cd {{api}}
    data="${VS_DATA_DIR:-$PWD/.demo-data}"
    mkdir -p "$data/state"
    # server_auto_start is an operator setting (PATCH /config/api), kept in the settings file.
    fake="$(.venv/bin/python -c 'import json, shlex, sys
    from pathlib import Path
    path = Path(sys.argv[1])
    try:
        current = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        current = None
    if not isinstance(current, dict):
        print(f"demo: {path} was not a JSON object; replaced", file=sys.stderr)
        current = {}
    path.write_text(json.dumps({**current, "server_auto_start": True}, indent=2) + "\n")
    print(shlex.join([sys.executable, str(Path("tests/support/fake_vs_server.py").resolve())]))
    ' "$data/state/api-settings.json")"
    base="http://${VS_HOST:-127.0.0.1}:${VS_PORT:-8080}/api/v1alpha1"
    key="$data/state/admin-api-key"
    cat <<TEXT
    demo: the API with the fake game server as its game server (no game download, no licence)
      data       $data (delete it to start over)
      admin key  $key (written on the first start, unless VS_API_KEY_ADMIN is set)
      try        KEY=\$(cat $key)
                 curl -H "X-API-Key: \$KEY" $base/server
                 curl -H "X-API-Key: \$KEY" $base/server/players
                 curl -H "X-API-Key: \$KEY" -H 'Content-Type: application/json' \\
                      -d '{"command": "/stats"}' $base/server/console/command
      players    echo "join Alice" > $data/control.fifo   (also: leave Alice, chat Alice hi)
      stop       Ctrl-C: the game server gets /stop and saves its world, then both exit
    TEXT
    # A fast start (about 1 s) and stop; one world write a second, as the real default.
    export VS_DATA_DIR="$data" VS_SERVER_COMMAND="$fake"
    export FAKE_VS_TIME_SCALE="${FAKE_VS_TIME_SCALE:-0.1}" FAKE_VS_WRITE_INTERVAL_S="${FAKE_VS_WRITE_INTERVAL_S:-10}"
    export FAKE_VS_CONTROL="${FAKE_VS_CONTROL:-$data/control.fifo}"
    exec .venv/bin/python -m vintagestory_api
