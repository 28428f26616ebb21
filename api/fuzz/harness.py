"""Contract fuzzing with schemathesis, in-process, against an app whose lifespan really runs.

Importable so that the fuzz runs (`fuzz/`, `just fuzz`) and the test proving that a planted 500
fails the run (`tests/test_fuzz_harness.py`) share one harness. Every `fuzz_*` function returns a
`FuzzReport` instead of raising at the first problem, so one run lists every broken operation.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import traceback
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import schemathesis
from fastapi import FastAPI
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.result import Ok
from schemathesis.generation.stateful import run_state_machine_as_test
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance, use_after_free
from schemathesis.specs.openapi.schemas import OpenApiSchema
from tests.support.offline import BUILTIN_JOBS_OFF, offline_settings
from tests.support.stub_server import FIXTURES

from vintagestory_api.api_settings.schemas import ApiSettings
from vintagestory_api.app import API_PREFIX
from vintagestory_api.auth.keys import Role
from vintagestory_api.config import Settings
from vintagestory_api.kit.state_files import write_json
from vintagestory_api.scheduler.service import SchedulerService
from vintagestory_api.versions.schemas import VersionsCache
from vintagestory_api.versions.service import CACHE_FILE as VERSIONS_CACHE_FILE
from vintagestory_api.versions.service import parse_channel

ADMIN_KEY = "fuzz-admin-key-0123456789"
MONITOR_KEY = "fuzz-monitor-key-0123456789"
# Jobs registered after startup so that paths with a job id reach real jobs.
FUZZ_JOB_IDS = ("fuzz_interval", "fuzz_paused", "fuzz_cron")
# Not part of the OpenAPI document: the harness calls it to put deleted fuzz jobs back.
RESET_JOBS_PATH = "/__fuzz__/reset-jobs"
SETTLE_PATH = "/__fuzz__/settle"
SETTLE_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_EXAMPLES = 25

Case = schemathesis.Case[Any]
Check = Callable[[schemathesis.CheckContext, schemathesis.Response, Case], bool | None]


def max_examples_from_env(default: int = DEFAULT_MAX_EXAMPLES) -> int:
    """The per-operation budget: `FUZZ_MAX_EXAMPLES`, else `default`."""
    return int(os.environ.get("FUZZ_MAX_EXAMPLES", default))


# The settings every example starts from: the defaults, with the built-in jobs off.
RESET_SETTINGS = {**ApiSettings().model_dump(), **BUILTIN_JOBS_OFF}


def fuzz_settings(data_dir: Path) -> Settings:
    """Settings for a fuzzed app: built-in jobs off, upstream APIs and the game download CDN
    unreachable (refused at once), and versions known from an earlier check. The fuzz runs turn
    the built-in jobs on through PATCH /config/api."""
    settings = offline_settings(
        data_dir, admin_key=ADMIN_KEY, monitor_key=MONITOR_KEY, shutdown_grace_seconds=2
    )
    _seed_versions_cache(data_dir)
    return settings


def _seed_versions_cache(data_dir: Path) -> None:
    # Offline no version check succeeds, so without a cached list every valid install request
    # would be the documented 503 VERSIONS_UNAVAILABLE; the fixture lists stand in for a past
    # check, so installs reach their other answers (and any download is refused on loopback).
    cache = VersionsCache()
    for channel, entry in (("stable", cache.stable), ("unstable", cache.unstable)):
        payload = json.loads((FIXTURES / f"{channel}.json").read_bytes())
        entry.versions = parse_channel(f"fixture:{channel}.json", payload)
        entry.latest = next(v.version for v in entry.versions if v.is_latest)
    write_json(
        data_dir / "state" / VERSIONS_CACHE_FILE, cache.model_dump(mode="json"), keep_backup=False
    )


async def fuzz_noop() -> None:
    """What every fuzz job runs: nothing, at once."""


def _register_fuzz_jobs(scheduler: SchedulerService) -> list[str]:
    added = []
    specs: dict[str, Callable[[], object]] = {
        "fuzz_interval": lambda: scheduler.add_interval_job(fuzz_noop, 3600, "fuzz_interval"),
        "fuzz_paused": lambda: scheduler.add_interval_job(
            fuzz_noop, 600, "fuzz_paused", paused=True
        ),
        "fuzz_cron": lambda: scheduler.add_cron_job(
            fuzz_noop, "30 4 * * mon", "fuzz_cron", timezone="Europe/Berlin"
        ),
    }
    for job_id, add in specs.items():
        if not scheduler.has_job(job_id):
            add()
            added.append(job_id)
    return added


def prepare_app(app: FastAPI) -> FastAPI:
    """Register the fuzz jobs once the app has started, and add the hidden reset route.

    The jobs are added inside the app's own lifespan (so on the loop that serves requests), after
    the original startup; the reset route re-adds any that a fuzzed DELETE removed.
    """
    original = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(inner: FastAPI) -> AsyncIterator[Any]:
        context: AbstractAsyncContextManager[Any] = original(inner)
        async with context as state:
            _register_fuzz_jobs(inner.state.scheduler)
            yield state

    app.router.lifespan_context = lifespan

    async def settle() -> dict[str, int]:
        # A run-now answers before its run ends; the next step's answer (409 or not) must not
        # depend on how fast that run was, or Hypothesis sees the same steps behave differently.
        scheduler: SchedulerService = app.state.scheduler
        deadline = asyncio.get_running_loop().time() + SETTLE_TIMEOUT_SECONDS
        while scheduler.health().running_jobs and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.005)
        return {"running_jobs": scheduler.health().running_jobs}

    async def reset_jobs() -> dict[str, list[str]]:
        # Every example starts from the same state: settings back to the start (built-in jobs
        # off), no run in flight, the fuzz jobs fresh with their original schedules.
        await app.state.api_settings.patch(RESET_SETTINGS, role=Role.ADMIN)
        await settle()
        scheduler: SchedulerService = app.state.scheduler
        for job_id in FUZZ_JOB_IDS:
            if scheduler.has_job(job_id):
                scheduler.remove_job(job_id)
        return {"added": _register_fuzz_jobs(scheduler)}

    app.add_api_route(RESET_JOBS_PATH, reset_jobs, methods=["POST"], include_in_schema=False)
    app.add_api_route(SETTLE_PATH, settle, methods=["POST"], include_in_schema=False)
    return app


def settle_jobs(app: FastAPI) -> None:
    with _client(app) as client:
        client.post(SETTLE_PATH).raise_for_status()


# -- the OpenAPI document, with links for the stateful run --------------------------------------

_JOB_PATH = f"{API_PREFIX}/jobs/{{job_id}}"
# (path, method, status) of the job operations, and where their response names the job.
_JOB_ID_SOURCES: dict[tuple[str, str, str], str] = {
    (_JOB_PATH, "get", "200"): "$response.body#/data/id",
    (_JOB_PATH, "patch", "200"): "$response.body#/data/id",
    (_JOB_PATH, "delete", "200"): "$response.body#/data/id",
    (f"{_JOB_PATH}/pause", "post", "200"): "$response.body#/data/id",
    (f"{_JOB_PATH}/resume", "post", "200"): "$response.body#/data/id",
    (f"{_JOB_PATH}/run", "post", "202"): "$response.body#/data/job_id",
    (f"{_JOB_PATH}/runs", "get", "200"): "$response.body#/data/job_id",
}
_JOBS_LIST = (f"{API_PREFIX}/jobs", "get", "200")
_CONFIG_PATCH = (f"{API_PREFIX}/config/api", "patch", "200")


def _job_targets(paths: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, operationId) of every operation that takes a job id."""
    return [
        (path, operation["operationId"])
        for path, methods in paths.items()
        if "{job_id}" in path
        for operation in methods.values()
    ]


# A deleted job's run history is kept on purpose (a run in flight finishes and stays visible),
# so "the resource is still there after DELETE" is the contract for /runs, not a bug.
_KEPT_AFTER_DELETE = {f"{_JOB_PATH}/runs"}


def _add_link(paths: dict[str, Any], source: tuple[str, str, str], name: str, link: Any) -> None:
    path, method, status = source
    response = paths[path][method]["responses"][status]
    response.setdefault("links", {})[name] = link


def linked_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document plus links: job id producers -> every job operation, and the
    job list <-> PATCH /config/api, so stateful runs chain pause -> run -> resume -> patch ->
    delete and settings changes (which add and remove built-in jobs) in between."""
    document = copy.deepcopy(app.openapi())
    paths: dict[str, Any] = document["paths"]
    targets = _job_targets(paths)
    for source, expression in _JOB_ID_SOURCES.items():
        for path, target in targets:
            if source[1] == "delete" and path in _KEPT_AFTER_DELETE:
                continue
            link = {"operationId": target, "parameters": {"path.job_id": expression}}
            _add_link(paths, source, f"to_{target}", link)
    for index in range(len(FUZZ_JOB_IDS)):
        for _, target in targets:
            expression = f"$response.body#/data/jobs/{index}/id"
            link = {"operationId": target, "parameters": {"path.job_id": expression}}
            _add_link(paths, _JOBS_LIST, f"job{index}_to_{target}", link)
    config_patch = paths[_CONFIG_PATCH[0]]["patch"]["operationId"]
    jobs_list = paths[_JOBS_LIST[0]]["get"]["operationId"]
    _add_link(paths, _JOBS_LIST, "to_config_patch", {"operationId": config_patch})
    _add_link(paths, _CONFIG_PATCH, "to_jobs_list", {"operationId": jobs_list})
    return document


@contextmanager
def started(app: FastAPI) -> Iterator[OpenApiSchema]:
    """Run the app's lifespan in schemathesis' ASGI transport and yield its linked schema.

    The transport serves every request on the loop its lifespan runs on, so the scheduler and the
    requests share one loop, as under uvicorn. Shutdown runs on leaving, and its errors propagate.
    """
    schema = schemathesis.openapi.from_dict(linked_openapi(app))
    schema.app = app
    with _client(app) as client:  # starts the lifespan; it stays up until shut down
        try:
            client.post(RESET_JOBS_PATH).raise_for_status()
            yield schema
        finally:
            asgi.shutdown_lifespans()


def _client(app: FastAPI) -> asgi.ASGIClient:
    # FastAPI's ASGI signature uses MutableMapping where schemathesis' alias says dict.
    application: Any = app
    return asgi.get_client(application)


def reset_jobs(app: FastAPI) -> None:
    with _client(app) as client:
        client.post(RESET_JOBS_PATH).raise_for_status()


# -- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FuzzFailure:
    run: str
    operation: str
    message: str


@dataclass
class FuzzReport:
    failures: list[FuzzFailure] = field(default_factory=list)
    operations: int = 0

    def extend(self, other: FuzzReport) -> None:
        self.failures.extend(other.failures)
        self.operations += other.operations

    def summary(self) -> str:
        lines = [f"{len(self.failures)} failing of {self.operations} fuzzed operation runs"]
        for failure in self.failures:
            lines.append(f"--- [{failure.run}] {failure.operation}\n{failure.message}")
        return "\n".join(lines)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, AssertionError | BaseExceptionGroup) and text:
        return text
    return "".join(traceback.format_exception(exc)).strip()


def _settings(max_examples: int, *, derandomize: bool, **extra: Any) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        # CI sets FUZZ_DERANDOMIZE=1: the same examples every run, so a failure there can be
        # reproduced with the same command; `just fuzz` alone explores new ones each time.
        derandomize=derandomize or os.environ.get("FUZZ_DERANDOMIZE") == "1",
        suppress_health_check=list(hypothesis.HealthCheck),
        # A failure is reported at its first, smallest-effort form: shrinking would re-drive a
        # stateful app for minutes to make the example shorter, not more useful.
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        report_multiple_bugs=True,
        **extra,
    )


# -- checks ---------------------------------------------------------------------------------------


def _routed_to_operation(case: Case) -> bool:
    # A path parameter with "/" in it names another route (or none): then the router answers.
    return not any("/" in str(value) for value in (case.path_parameters or {}).values())


def no_key_is_rejected(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Case
) -> bool | None:
    """Without a key: 401 error envelope under the API prefix; probes answer 200 or 503."""
    del ctx
    if case.operation.path.startswith(API_PREFIX):
        if not _routed_to_operation(case):
            return None
        assert response.status_code == 401, (
            f"expected 401 without a key, got {response.status_code}"
        )
        body = response.json()
        assert body.get("status") == "error", f"not the error envelope: {body!r}"
        assert body.get("error", {}).get("code") == "UNAUTHORIZED", f"wrong code: {body!r}"
    else:
        assert response.status_code in (200, 503), f"probe answered {response.status_code}"
    return True


# Rejections of schema-valid input that JSON Schema cannot rule out: whether a cron expression
# parses, names a real IANA zone, or ever fires; whether a console line fits in 1 KB of UTF-8
# and is more than blanks. Any other 4xx to valid input is a schema gap.
# A mod reference is any text in the schema (a modid, a page URL); an uploaded file is any bytes.
SEMANTIC_REJECTIONS = frozenset(
    {
        "INVALID_SCHEDULE",
        "INVALID_HOLD",
        "METRICS_WINDOW_TOO_LONG",
        "INVALID_COMMAND",
        "INVALID_MOD_REFERENCE",
        "MOD_ARCHIVE_INVALID",
        "MOD_ARCHIVE_UNSAFE",
    }
)
# The fuzzed app's mod database is a refusing port on loopback (nothing leaves the machine), so
# a mod install answers the documented 502 of an unreachable database: not a server bug.
UPSTREAM_DOWN = frozenset({"MOD_DATABASE_UNAVAILABLE", "MOD_DOWNLOAD_FAILED"})


def no_server_error(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Case
) -> bool | None:
    """Schemathesis' `not_a_server_error`, except for the 502 of the unreachable upstream."""
    del ctx, case
    status = response.status_code
    if status < 500:
        return None
    code = response.json().get("error", {}).get("code") if status == 502 else None
    assert code in UPSTREAM_DOWN, f"Server error {status}: {response.text[:300]}"
    return True


def positive_data_accepted(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Case
) -> bool | None:
    """Schemathesis' `positive_data_acceptance`, except for `SEMANTIC_REJECTIONS`."""
    del ctx
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    status = response.status_code
    # 426: a WebSocket route's documented answer to any plain HTTP request, valid or not.
    if status < 400 or status in (401, 403, 404, 409, 426) or status >= 500:
        # 5xx: judged by `no_server_error`.
        return None
    code = response.json().get("error", {}).get("code") if status == 422 else None
    assert code in SEMANTIC_REJECTIONS, (
        f"schema-valid request rejected with {status}: {response.text[:300]}"
    )
    return True


# -- runs -----------------------------------------------------------------------------------------


def _integers_as_integers(value: Any) -> Any:
    """`5.0` as `5`: JSON Schema counts `5.0` as an integer, the API deliberately does not (its
    models are strict), so integer fields are sent as integer literals."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integers_as_integers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integers_as_integers(item) for item in value]
    return value


def normalize_case(case: Case) -> None:
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if positive and isinstance(case.body, dict | list):
        case.body = _integers_as_integers(case.body)


def _job_id_strategy(operation: Any, **kwargs: Any) -> st.SearchStrategy[Case]:
    """Mostly real job ids (fuzz jobs and built-ins), sometimes whatever schemathesis makes up."""
    generated: st.SearchStrategy[Case] = operation.as_strategy(**kwargs)
    if "{job_id}" not in operation.path:
        return generated
    real_ids = (*FUZZ_JOB_IDS, "metrics_collection", "mod_cache_refresh")
    known: st.SearchStrategy[Case] = st.sampled_from(real_ids).flatmap(
        lambda job_id: operation.as_strategy(path_parameters={"job_id": job_id}, **kwargs)
    )
    return st.one_of(known, known, known, generated)


def _invalid_only_in_headers(case: Case) -> bool:
    """A negative case whose invalid parts do not survive being sent: a header the run's own
    headers replace, or a query value of the wrong JSON type. A query string has no types: a
    list ["unstable"] or the string "62" arrives as a valid `unstable` or `62`. Negative paths
    and bodies are still checked."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_negative:
        return False
    invalid = {where for where, info in meta.components.items() if info.mode.is_negative}
    sent_as_text = {ParameterLocation.HEADER, ParameterLocation.QUERY, ParameterLocation.UNKNOWN}
    has_body = case.body is not None and case.body is not NOT_SET
    return not has_body and invalid <= sent_as_text


def fuzz_operations(
    app: FastAPI,
    schema: OpenApiSchema,
    *,
    run: str,
    headers: dict[str, str] | None,
    max_examples: int,
    drop_headers: Sequence[str] = (),
    additional_checks: Sequence[Check] = (),
    derandomize: bool = False,
    only: Sequence[str] | None = None,
) -> FuzzReport:
    """Every operation (or those labelled in `only`), positive and negative data, each request
    checked by schemathesis.

    `headers` are sent on every request (they win over generated ones); `drop_headers` are
    removed from generated cases (for the run without a key).
    """
    report = FuzzReport()
    modes = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            report.failures.append(FuzzFailure(run, "schema", str(result.err())))
            continue
        operation = result.ok()
        if only is not None and operation.label not in only:
            continue
        report.operations += 1
        strategy = st.one_of(*(_job_id_strategy(operation, generation_mode=m) for m in modes))

        @_settings(max_examples, derandomize=derandomize)
        @hypothesis.given(case=strategy)
        def check_operation(case: Case) -> None:
            # A case made invalid only in its headers is valid once `headers` (the API key)
            # replace them; it would be a false "invalid data accepted".
            hypothesis.assume(not (headers and _invalid_only_in_headers(case)))
            reset_jobs(app)
            normalize_case(case)
            for name in drop_headers:
                if case.headers:
                    case.headers.pop(name, None)
            case.call_and_validate(
                headers=headers,
                additional_checks=[positive_data_accepted, no_server_error, *additional_checks],
                excluded_checks=[positive_data_acceptance, not_a_server_error],
            )

        try:
            check_operation()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is the latter
            report.failures.append(FuzzFailure(run, operation.label, _describe(exc)))
    return report


def fuzz_stateful(
    app: FastAPI,
    schema: OpenApiSchema,
    *,
    headers: dict[str, str],
    max_examples: int,
    step_count: int = 12,
    derandomize: bool = False,
) -> FuzzReport:
    """Sequences along the links of `linked_openapi`, with schemathesis' stateful checks
    (use after free, resource availability) on top of the per-response ones.

    Only valid data here: every step carries the key, so a negative case that drops the key is
    sent with it anyway and schemathesis would flag its acceptance. Invalid data is the
    per-operation runs' job."""
    schema.config.phases.stateful.generation.update(modes=[schemathesis.GenerationMode.POSITIVE])
    base = schema.as_state_machine()

    class JobWorkflow(base):  # type: ignore[misc,valid-type]  # built at runtime by schemathesis
        def setup(self) -> None:
            reset_jobs(app)

        def before_call(self, case: Case) -> None:
            normalize_case(case)

        def after_call(self, response: schemathesis.Response, case: Case) -> None:
            settle_jobs(app)

        def validate_response(
            self,
            response: schemathesis.Response,
            case: Case,
            additional_checks: list[Check] | None = None,
            **kwargs: Any,
        ) -> None:
            excluded: list[Check] = [positive_data_acceptance, not_a_server_error]
            if case.operation.path in _KEPT_AFTER_DELETE:
                excluded.append(use_after_free)
            case.validate_response(
                response,
                additional_checks=[
                    positive_data_accepted,
                    no_server_error,
                    *(additional_checks or []),
                ],
                excluded_checks=excluded,
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"headers": headers}

    report = FuzzReport(operations=1)
    try:
        run_state_machine_as_test(
            JobWorkflow,
            settings=_settings(
                max_examples, derandomize=derandomize, stateful_step_count=step_count
            ),
        )
    except (Exception, BaseExceptionGroup) as exc:
        report.failures.append(FuzzFailure("stateful", "job workflow", _describe(exc)))
    return report
