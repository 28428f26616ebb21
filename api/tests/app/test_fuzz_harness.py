"""The contract-fuzzing harness of `just fuzz` fails on a route that answers 500."""

from __future__ import annotations

from fastapi import FastAPI
from fuzz.harness import fuzz_operations, prepare_app, started

from tests.support.keys import ADMIN_KEY
from vintagestory_api.app import API_PREFIX, create_app
from vintagestory_api.config import Settings
from vintagestory_api.errors import ApiError

PLANTED = f"GET {API_PREFIX}/planted"


class _Broken(ApiError):
    status_code = 500
    code = "PLANTED"


def _app_with_planted_500(settings: Settings, *, raising: bool) -> FastAPI:
    app = prepare_app(create_app(settings))

    async def planted() -> dict[str, str]:
        if raising:
            raise RuntimeError("planted failure")
        raise _Broken("planted 500")

    app.add_api_route(f"{API_PREFIX}/planted", planted, methods=["GET"])
    return app


def _fuzz_planted(app: FastAPI) -> str:
    with started(app) as schema:
        report = fuzz_operations(
            app,
            schema,
            run="planted",
            headers={"X-API-Key": ADMIN_KEY},
            max_examples=3,
            derandomize=True,
            only=[PLANTED, f"GET {API_PREFIX}/auth/me"],
        )
    assert report.operations == 2
    assert [failure.operation for failure in report.failures] == [PLANTED]
    return report.summary()


def test_harness_reports_a_route_answering_500(settings: Settings) -> None:
    summary = _fuzz_planted(_app_with_planted_500(settings, raising=False))
    assert "Server error" in summary
    assert "[500]" in summary


def test_harness_reports_a_route_raising(settings: Settings) -> None:
    summary = _fuzz_planted(_app_with_planted_500(settings, raising=True))
    # The app answers an unexpected exception itself, with the 500 envelope (and logs it), so
    # the harness sees a server error rather than a failed request.
    assert "Server error" in summary
    assert "[500]" in summary
