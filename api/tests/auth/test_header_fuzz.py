"""The X-API-Key header over arbitrary bytes: 200 for exactly the configured keys, else 401."""

from __future__ import annotations

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.keys import ADMIN_KEY, MONITOR_KEY

KEYS = (ADMIN_KEY.encode(), MONITOR_KEY.encode())

# Arbitrary bytes, plus near misses of the real keys: cut, extended, padded, case-flipped.
near_misses = st.sampled_from(KEYS).flatmap(
    lambda key: st.one_of(
        st.integers(0, len(key) - 1).map(lambda n: key[:n]),
        st.binary(min_size=1, max_size=8).map(lambda extra: key + extra),
        st.sampled_from([b" ", b"\t", b"\x00"]).map(lambda pad: pad + key + pad),
        st.just(key.upper()),
    )
)
header_values = st.one_of(st.binary(max_size=200), near_misses, st.sampled_from(KEYS))


@settings(
    max_examples=200,
    deadline=None,
    # One app serves every example: the header is the only input, the app keeps no state from it.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=header_values)
def test_any_x_api_key_bytes_get_200_or_401(client: TestClient, value: bytes) -> None:
    response = client.get("/api/v1alpha1/auth/me", headers={"X-API-Key": value})
    if value in KEYS:
        assert response.status_code == 200
        assert response.json()["data"]["role"] == ("admin" if value == KEYS[0] else "monitor")
    else:
        assert response.status_code == 401, (value, response.status_code, response.text)
        assert response.json()["error"]["code"] == "UNAUTHORIZED"
