"""CORS: origins are checked at startup, and a refused preflight answers with the envelope."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from vintagestory_api.__main__ import settings_error_message
from vintagestory_api.app import API_PREFIX, create_app
from vintagestory_api.config import Settings

ORIGIN = "https://x.example"


@pytest.fixture
def cors_client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"cors_origins": [ORIGIN]}))
    with TestClient(app) as client:
        yield client


def _preflight(origin: str, method: str = "GET") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://x.example/", ["https://x.example"]),
        ("HTTPS://X.Example:443", ["https://x.example"]),
        (
            "http://localhost:5173/, https://a.example",
            ["http://localhost:5173", "https://a.example"],
        ),
        ("http://127.0.0.1:8080", ["http://127.0.0.1:8080"]),
        ("*", ["*"]),
        ("", []),
    ],
)
def test_origins_are_normalised_to_what_browsers_send(
    tmp_path: Path, given: str, expected: list[str]
) -> None:
    assert Settings(data_dir=tmp_path, cors_origins=given).cors_origins == expected


@pytest.mark.parametrize(
    "given",
    ["x.example", "https://x.example/app", "ftp://x.example", "https://", "https://x.example?a=1"],
)
def test_an_invalid_origin_stops_startup_naming_the_variable(tmp_path: Path, given: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(data_dir=tmp_path, cors_origins=given)
    message = settings_error_message(caught.value)
    assert "VS_CORS_ORIGINS" in message
    assert given in message, message


def test_a_trailing_slash_origin_matches_its_browser_origin(
    settings: Settings, monitor_headers: dict[str, str]
) -> None:
    normalised = Settings(data_dir=settings.data_dir, cors_origins=f"{ORIGIN}/").cors_origins
    app = create_app(settings.model_copy(update={"cors_origins": normalised}))
    with TestClient(app) as client:
        preflight = client.options(f"{API_PREFIX}/auth/me", headers=_preflight(ORIGIN))
        simple = client.get(f"{API_PREFIX}/auth/me", headers={**monitor_headers, "Origin": ORIGIN})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert simple.headers["access-control-allow-origin"] == ORIGIN


def test_a_refused_preflight_is_the_json_envelope(cors_client: TestClient) -> None:
    response = cors_client.options(
        f"{API_PREFIX}/auth/me", headers=_preflight("https://evil.example")
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "CORS_PREFLIGHT_REFUSED"
    assert "origin" in error["message"]
    assert response.headers["X-Request-ID"]


def test_a_preflight_for_a_method_not_allowed_names_the_method(cors_client: TestClient) -> None:
    response = cors_client.options(f"{API_PREFIX}/jobs/x", headers=_preflight(ORIGIN, "TRACE"))
    assert response.status_code == 400
    assert "method" in response.json()["error"]["message"]
