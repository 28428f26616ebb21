"""The console WebSocket, from a real client (`websockets`) against the app served by uvicorn,
with the fake game server as its real child process.

One served app for the module: the tests that need the game server running or stopped bring
it there first, so they hold in any order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support.gameserver import ADMIN, FAST_TIMINGS, SERVER, fake_command, wait_state
from tests.support.keys import ADMIN_KEY, MONITOR_KEY
from tests.support.offline import BUILTIN_JOBS_OFF, offline_settings
from tests.support.served_app import ServedApp
from tests.support.server_process import free_port
from vintagestory_api.api_settings.service import API_SETTINGS_FILE
from vintagestory_api.app import create_app
from vintagestory_api.config import Settings
from vintagestory_api.gameserver.service import GameServerService
from vintagestory_api.kit.state_files import write_json

SOCKET = f"{SERVER}/console/ws"
MONITOR = {"X-API-Key": MONITOR_KEY}
ENTRY_FIELDS = {"kind", "seq", "time", "type", "text", "server_time", "stream"}
READY = "Dedicated Server now running on Port"
WAIT = 10.0


def _game_settings(data_dir: Path) -> Settings:
    settings = offline_settings(data_dir, admin_key=ADMIN_KEY, monitor_key=MONITOR_KEY)
    write_json(
        settings.state_dir / API_SETTINGS_FILE,
        {**BUILTIN_JOBS_OFF, **FAST_TIMINGS},
        keep_backup=False,
    )
    return settings.model_copy(
        update={"server_command": fake_command(), "server_port": free_port()}
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    with pytest.MonkeyPatch.context() as env:
        # The fake's knobs: the API passes its environment on to the game server.
        env.setenv("FAKE_VS_TIME_SCALE", "0.02")
        settings = _game_settings(tmp_path_factory.mktemp("console-ws") / "data")
        with ServedApp(create_app(settings)) as app:
            yield app


@pytest.fixture
def http(served: ServedApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.base_url, timeout=WAIT) as client:
        yield client


def _service(served: ServedApp) -> GameServerService:
    service: GameServerService = served.app.state.gameserver
    return service


def _open(
    served: ServedApp, query: str = "", headers: dict[str, str] | None = None
) -> ClientConnection:
    url = served.ws_url + SOCKET + (f"?{query}" if query else "")
    return connect(url, additional_headers=ADMIN if headers is None else headers, open_timeout=WAIT)


def _message(ws: ClientConnection) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ws.recv(timeout=WAIT))
    return data


def _until(ws: ClientConnection, done: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """Every message up to and including the first for which `done` holds."""
    messages = [_message(ws)]
    while not done(messages[-1]):
        messages.append(_message(ws))
    return messages


def _closed(ws: ClientConnection) -> tuple[list[dict[str, Any]], int, str]:
    """The messages before the server closed the socket, its close code and reason."""
    messages = []
    while True:
        try:
            messages.append(_message(ws))
        except ConnectionClosed as closed:
            received = closed.rcvd
            break
    assert received is not None, "the server sent no close frame"
    return messages, received.code, received.reason


def _wait_for(what: str, check: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _server_in(http: httpx.Client, state: str) -> None:
    current = http.get(SERVER, headers=ADMIN).json()["data"]["state"]
    if current != state:
        action = "start" if state == "running" else "stop"
        assert http.post(f"{SERVER}/{action}", headers=ADMIN).status_code in (200, 202)
        wait_state(http, state)


def test_it_sends_the_last_n_entries_then_new_ones_none_lost_or_twice(
    served: ServedApp, http: httpx.Client
) -> None:
    _server_in(http, "running")
    with _open(served, "last=5") as ws:
        backlog = _until(ws, lambda m: m["kind"] == "backlog_end")
        response = http.post(f"{SERVER}/console/command", headers=ADMIN, json={"command": "/stats"})
        assert response.status_code == 200, response.text
        live = _until(ws, lambda m: m.get("text") == "Handling Console Command /stats ")
        # Its reply: the multi-line block (the player poll's `/stats compact` is one line).
        live += _until(ws, lambda m: m["text"].startswith("Version: ") and "\n" in m["text"])
    entries, end = backlog[:-1], backlog[-1]
    assert len(entries) == 5
    assert all(set(m) == ENTRY_FIELDS and m["kind"] == "entry" for m in entries + live)
    assert entries[-1]["seq"] == end["last_seq"]
    # Backlog and live stream together are exactly the buffer's run of entries, field for field.
    first = entries[0]["seq"]
    rest = http.get(
        f"{SERVER}/console",
        headers=ADMIN,
        params={"after_seq": first - 1, "limit": len(entries) + len(live)},
    ).json()["data"]["entries"]
    assert [{**e, "kind": "entry"} for e in rest] == entries + live


def test_it_opens_while_the_server_is_stopped_and_streams_its_start(
    served: ServedApp, http: httpx.Client
) -> None:
    _server_in(http, "stopped")
    with _open(served, "last=0") as ws:
        assert _message(ws)["kind"] == "backlog_end"
        assert http.post(f"{SERVER}/start", headers=ADMIN).status_code == 202
        live = _until(ws, lambda m: m.get("text", "").startswith(READY))
    seqs = [m["seq"] for m in live]
    assert seqs == sorted(set(seqs))


@pytest.mark.parametrize(
    ("headers", "query", "close_code", "error_code", "named"),
    [
        ({}, "", 4401, "UNAUTHORIZED", "X-API-Key"),
        ({"X-API-Key": "wrong-key-0123456789"}, "", 4401, "UNAUTHORIZED", "X-API-Key"),
        ({}, "token=not-a-token", 4401, "UNAUTHORIZED", "token"),
        (MONITOR, "", 4403, "FORBIDDEN", "admin"),
        (ADMIN, "last=10001", 4422, "VALIDATION_ERROR", "query.last"),
        (ADMIN, "last=ten", 4422, "VALIDATION_ERROR", "query.last"),
        (ADMIN, "lsat=5", 4422, "VALIDATION_ERROR", "query.lsat"),
    ],
    ids=["no_key", "wrong_key", "bad_token", "monitor", "last_too_big", "last_not_int", "typo"],
)
def test_a_refused_socket_gets_the_error_envelope_then_its_close_code(
    served: ServedApp,
    headers: dict[str, str],
    query: str,
    close_code: int,
    error_code: str,
    named: str,
) -> None:
    with _open(served, query, headers) as ws:
        messages, code, reason = _closed(ws)
    assert code == close_code
    [envelope] = messages
    assert envelope["status"] == "error"
    assert envelope["error"]["code"] == error_code
    assert named in envelope["error"]["message"]
    assert reason
    assert envelope["error"]["message"].startswith(reason.rstrip("…"))


def test_a_token_opens_one_socket_only(served: ServedApp, http: httpx.Client) -> None:
    response = http.post("/api/v1alpha1/auth/ws-token", headers=ADMIN)
    assert response.status_code == 200
    issued = response.json()["data"]
    assert issued["role"] == "admin"
    assert issued["ttl_seconds"] == 60
    with _open(served, f"token={issued['token']}&last=0", headers={}) as ws:
        assert _message(ws)["kind"] == "backlog_end"
    with _open(served, f"token={issued['token']}", headers={}) as again:
        _, code, _ = _closed(again)
    assert code == 4401


def test_a_wrong_key_beside_a_good_token_is_refused_and_spends_the_token(
    served: ServedApp, http: httpx.Client
) -> None:
    token = http.post("/api/v1alpha1/auth/ws-token", headers=ADMIN).json()["data"]["token"]
    with _open(served, f"token={token}", headers={"X-API-Key": "wrong-key-0123456789"}) as ws:
        assert _closed(ws)[1] == 4401
    with _open(served, f"token={token}", headers={}) as ws:
        assert _closed(ws)[1] == 4401


def test_the_token_endpoint_refuses_the_monitor_key(http: httpx.Client) -> None:
    response = http.post("/api/v1alpha1/auth/ws-token", headers=MONITOR)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"
    assert http.post("/api/v1alpha1/auth/ws-token").status_code == 401


def test_a_client_that_leaves_is_unsubscribed(served: ServedApp) -> None:
    service = _service(served)
    before = service.subscriber_count
    with _open(served, "last=0") as ws:
        assert _message(ws)["kind"] == "backlog_end"
        assert service.subscriber_count == before + 1
    _wait_for("the subscription to end", lambda: service.subscriber_count == before)


def test_plain_http_is_answered_426_and_still_needs_the_admin(http: httpx.Client) -> None:
    response = http.get(SOCKET, headers=ADMIN)
    assert response.status_code == 426
    assert response.headers["upgrade"] == "websocket"
    assert response.json()["error"]["code"] == "UPGRADE_REQUIRED"
    assert http.get(SOCKET, headers=MONITOR).status_code == 403


def test_api_shutdown_closes_open_sockets_at_once(settings: Settings) -> None:
    served = ServedApp(create_app(settings))
    with served, _open(served, "last=0") as ws:
        assert _message(ws)["kind"] == "backlog_end"
        began = time.monotonic()
        served.stop(timeout=WAIT)
        stopped_in = time.monotonic() - began
        _, code, _ = _closed(ws)
    # uvicorn closes every WebSocket ("service restart") before the lifespan shutdown.
    assert code == 1012
    # The open socket held nothing up: uvicorn's own pause and the lifespan, no grace period.
    assert stopped_in < 5
    assert _service(served).subscriber_count == 0
