from __future__ import annotations

from fastapi.testclient import TestClient


def test_healthz_needs_no_key_and_uses_the_envelope(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    data = body["data"]
    assert data["api"] == "healthy"
    assert set(data["scheduler"]) >= {"status", "job_count", "running_jobs"}
    disk = data["disk"]
    assert disk["total_bytes"] > 0
    assert 0 <= disk["free_bytes"] <= disk["total_bytes"]


def test_readyz_is_200_with_checks_when_ready(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["ready"] is True
    assert data["checks"]
    assert all(data["checks"].values())


def test_docs_are_served_without_a_cdn(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text
    assert "unpkg" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/static-offline-docs/{asset}" in page.text
        assert client.get(f"/static-offline-docs/{asset}").status_code == 200
    schema = client.get("/openapi.json").json()
    assert schema["info"]["title"]
    assert {tag["name"] for tag in schema["tags"]} >= {"health", "auth"}
