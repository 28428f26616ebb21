"""Every operation against the declared contract: with the admin key, the monitor key, without
a key, and in stateful job workflows. `FUZZ_MAX_EXAMPLES` sets the budget per operation."""

from __future__ import annotations

from fastapi import FastAPI
from schemathesis.specs.openapi.schemas import OpenApiSchema

from .harness import (
    ADMIN_KEY,
    MONITOR_KEY,
    fuzz_operations,
    fuzz_stateful,
    no_key_is_rejected,
)


def test_every_operation_with_the_admin_key_keeps_its_contract(
    app: FastAPI, schema: OpenApiSchema, max_examples: int
) -> None:
    report = fuzz_operations(
        app, schema, run="admin", headers={"X-API-Key": ADMIN_KEY}, max_examples=max_examples
    )
    assert not report.failures, report.summary()


def test_every_operation_with_the_monitor_key_keeps_its_contract(
    app: FastAPI, schema: OpenApiSchema, max_examples: int
) -> None:
    # The read-only key: reads answer, changes are a documented 403, nothing else breaks.
    report = fuzz_operations(
        app, schema, run="monitor", headers={"X-API-Key": MONITOR_KEY}, max_examples=max_examples
    )
    assert not report.failures, report.summary()


def test_every_operation_without_a_key_is_rejected_or_a_probe(
    app: FastAPI, schema: OpenApiSchema, max_examples: int
) -> None:
    report = fuzz_operations(
        app,
        schema,
        run="no key",
        headers=None,
        drop_headers=["X-API-Key"],
        additional_checks=[no_key_is_rejected],
        max_examples=max_examples,
    )
    assert not report.failures, report.summary()


def test_job_workflows_keep_the_contract(
    app: FastAPI, schema: OpenApiSchema, max_examples: int
) -> None:
    report = fuzz_stateful(app, schema, headers={"X-API-Key": ADMIN_KEY}, max_examples=max_examples)
    assert not report.failures, report.summary()
