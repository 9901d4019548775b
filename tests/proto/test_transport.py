"""The transport policy both pools share: keep-alive reuse and expiry, and what a lost
connection means for a request that had left."""

from __future__ import annotations

import pytest

from tradeforge_proto.core.errors import LocalProtocolError
from tradeforge_proto.transport import (
    IdleConnections,
    Origin,
    address_of,
    connection_lost,
    failure_reason,
)


def test_the_freshest_idle_connection_is_reused_and_expired_ones_are_handed_back() -> None:
    idle = IdleConnections[str](max_idle=4, expiry=30.0)
    assert idle.put("a", now=0.0) == []
    assert idle.put("b", now=10.0) == []
    assert idle.put("c", now=20.0) == []
    assert idle.take(now=25.0) == ("c", [])  # most recently used first
    assert idle.take(now=35.0) == ("b", [])  # 25 s idle: still fresh
    assert idle.take(now=35.0) == (None, ["a"])  # 35 s idle: expired, to close
    assert len(idle) == 0


def test_past_max_idle_the_oldest_connections_are_closed() -> None:
    idle = IdleConnections[int](max_idle=2, expiry=30.0)
    assert idle.put(1, now=0.0) == []
    assert idle.put(2, now=1.0) == []
    assert idle.put(3, now=2.0) == [1]
    assert idle.clear() == [2, 3]
    assert idle.take(now=3.0) == (None, [])


def test_a_pool_needs_room_and_a_positive_expiry() -> None:
    with pytest.raises(ValueError, match="max_idle >= 1"):
        IdleConnections[int](max_idle=0, expiry=1.0)
    with pytest.raises(ValueError, match="expiry > 0"):
        IdleConnections[int](max_idle=1, expiry=0.0)


def test_a_lost_connection_says_how_far_the_answer_got() -> None:
    reset = ConnectionResetError(104, "Connection reset by peer")
    partway = connection_lost("api:443", reused=False, received=10, error=reset)
    assert str(partway) == (
        "connection to api:443 was lost while reading the response: "
        "[Errno 104] Connection reset by peer"
    )
    assert partway.request_sent is True
    reused = connection_lost("api:443", reused=True, received=0, error=None)
    assert "reused keep-alive connection" in str(reused)
    assert "may have been received" in str(reused)
    fresh = connection_lost("api:443", reused=False, received=0, error=None)
    assert str(fresh) == "api:443 closed the connection before answering"


def test_reasons_and_addresses_read_plainly() -> None:
    wrapped = RuntimeError("wrapper")
    wrapped.__cause__ = OSError("no route to host")
    assert failure_reason(wrapped) == "no route to host"
    assert failure_reason(TimeoutError()) == "TimeoutError"
    assert address_of(Origin("https", "::1", 8443)) == "[::1]:8443"
    assert address_of(Origin.from_url("https://api.topstepx.com")) == "api.topstepx.com:443"


@pytest.mark.parametrize(
    ("url", "origin", "host_header"),
    [
        ("https://api.topstepx.com", Origin("https", "api.topstepx.com", 443), "api.topstepx.com"),
        ("HTTPS://API.example.com:8443/api?x=1", Origin("https", "api.example.com", 8443), None),
        ("http://127.0.0.1:5000/", Origin("http", "127.0.0.1", 5000), "127.0.0.1:5000"),
        ("http://example.com:80", Origin("http", "example.com", 80), "example.com"),
        ("http://[::1]:8080", Origin("http", "::1", 8080), "[::1]:8080"),
        ("https://[::1]", Origin("https", "::1", 443), "[::1]"),
    ],
)
def test_origin_from_url(url: str, origin: Origin, host_header: str | None) -> None:
    parsed = Origin.from_url(url)
    assert parsed == origin
    assert parsed.host_header == (host_header or "api.example.com:8443")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com",
        "wss://example.com/hubs/user",
        "example.com",
        "http://",
        "http://example.com:99999",
        "http://example.com:0",
        "https://user:secret@example.com",
    ],
)
def test_origin_rejects(url: str) -> None:
    with pytest.raises(LocalProtocolError) as refused:
        Origin.from_url(url)
    assert "secret" not in str(refused.value)
