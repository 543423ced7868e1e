"""The test suite itself can reach nothing but loopback (pytest-socket, set in pyproject)."""

from __future__ import annotations

import socket

import pytest
from pytest_socket import SocketConnectBlockedError


def test_the_guard_is_configured_for_loopback_only(request: pytest.FixtureRequest) -> None:
    allowed = request.config.getoption("allow_hosts")
    assert allowed is not None
    assert set(allowed.split(",")) == {"127.0.0.1", "::1", "localhost"}


@pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")
def test_a_connection_beyond_loopback_is_blocked_before_any_packet(
    request: pytest.FixtureRequest,
) -> None:
    # Only attempted with the guard in place (checked first), and to a documentation-only address.
    assert request.config.getoption("allow_hosts")
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(SocketConnectBlockedError),
    ):
        sock.connect(("192.0.2.1", 443))


def test_loopback_stays_reachable() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
