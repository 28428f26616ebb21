"""The OpenAPI document tells the truth: its request examples are accepted as they stand, and
every error the service sends is documented for its operation, with its code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.keys import ADMIN_KEY, MONITOR_KEY

ADMIN = {"X-API-Key": ADMIN_KEY}
MONITOR = {"X-API-Key": MONITOR_KEY}
API = "/api/v1alpha1"


@pytest.fixture
def builtin_jobs_off() -> bool:
    # The PATCH /jobs/{id} example is for the pre-filled built-in job id; it must exist.
    return False


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/openapi.json").json()
    return document


def _operation(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in item:
            operation: dict[str, Any] = item[method.lower()]
            return operation
    raise AssertionError(f"{method} {path} is not documented")


def _body_examples(spec: dict[str, Any]) -> Iterator[tuple[str, str, str, Any]]:
    for template, item in spec["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            for name, example in content.get("application/json", {}).get("examples", {}).items():
                yield method, template, name, example["value"]


def _path_for(operation: dict[str, Any], template: str) -> str:
    path = template
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            value = parameter.get("example", parameter.get("schema", {}).get("examples", [None])[0])
            assert value is not None, f"path parameter {parameter['name']} has no example"
            path = path.replace("{" + parameter["name"] + "}", str(value))
    return path


def test_every_request_body_example_is_accepted_as_it_stands(
    client: TestClient, spec: dict[str, Any]
) -> None:
    examples = list(_body_examples(spec))
    assert {(m, t) for m, t, _, _ in examples} >= {
        ("patch", f"{API}/config/api"),
        ("patch", f"{API}/jobs/{{job_id}}"),
        ("post", f"{API}/triggers/preview"),
    }
    for method, template, name, value in examples:
        path = _path_for(spec["paths"][template][method], template)
        response = client.request(method.upper(), path, json=value, headers=ADMIN)
        assert response.status_code < 300, (method, template, name, response.text)


ERRORS: list[tuple[str, str, dict[str, str], dict[str, Any] | None, int, str]] = [
    ("GET", f"{API}/auth/me", {}, None, 401, "UNAUTHORIZED"),
    ("GET", f"{API}/jobs", MONITOR, None, 403, "FORBIDDEN"),
    ("GET", f"{API}/jobs/no-such-job", ADMIN, None, 404, "JOB_NOT_FOUND"),
    ("GET", f"{API}/jobs/no-such-job/runs", ADMIN, None, 404, "JOB_NOT_FOUND"),
    ("POST", f"{API}/jobs/no-such-job/pause", ADMIN, None, 404, "JOB_NOT_FOUND"),
    ("GET", f"{API}/versions?chanel=unstable", MONITOR, None, 422, "VALIDATION_ERROR"),
    ("GET", f"{API}/mods?x=1", MONITOR, None, 422, "VALIDATION_ERROR"),
    ("POST", f"{API}/triggers/preview", MONITOR, {"cron": "0 4 * *"}, 422, "INVALID_SCHEDULE"),
    ("POST", f"{API}/triggers/preview", MONITOR, {"count": 3}, 422, "VALIDATION_ERROR"),
    ("PATCH", f"{API}/config/api", ADMIN, {"nope": 1}, 422, "API_SETTING_UNKNOWN"),
    ("PATCH", f"{API}/config/api", ADMIN, {"job_history_size": 0}, 422, "API_SETTING_INVALID"),
    ("PATCH", f"{API}/config/api", MONITOR, {"job_history_size": 5}, 403, "FORBIDDEN"),
    ("GET", f"{API}/metrics/history?minutes=5000", ADMIN, None, 422, "METRICS_WINDOW_TOO_LONG"),
    (
        "PATCH",
        f"{API}/jobs/mod_cache_refresh",
        ADMIN,
        {"cron": "0 4 * * *"},
        422,
        "INVALID_SCHEDULE",
    ),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "status", "code"), ERRORS)
def test_every_error_sent_is_documented_for_its_operation(
    client: TestClient,
    spec: dict[str, Any],
    method: str,
    path: str,
    headers: dict[str, str],
    body: dict[str, Any] | None,
    status: int,
    code: str,
) -> None:
    response = client.request(method, path, headers=headers, json=body)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)

    documented = _operation(spec, method, path.split("?")[0])["responses"].get(str(status))
    assert documented is not None, f"{method} {path}: {status} not documented"
    schema = documented["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ErrorResponse"}
    assert code in documented["content"]["application/json"]["examples"], documented


def test_no_operation_documents_fastapis_own_validation_body(spec: dict[str, Any]) -> None:
    for template, item in spec["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                refs = str(response.get("content", {}))
                assert "HTTPValidationError" not in refs, (method, template, status)
