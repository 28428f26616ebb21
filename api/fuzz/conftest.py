from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from schemathesis.specs.openapi.schemas import OpenApiSchema

from vintagestory_api.app import create_app

from .harness import fuzz_settings, max_examples_from_env, prepare_app, started


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return prepare_app(create_app(fuzz_settings(tmp_path / "data")))


@pytest.fixture
def schema(app: FastAPI) -> Iterator[OpenApiSchema]:
    with started(app) as schema:
        assert app.state.ready, "the lifespan did not complete startup"
        yield schema


@pytest.fixture
def max_examples() -> int:
    return max_examples_from_env()
