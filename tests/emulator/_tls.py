"""TLS material and test-only host-name resolution for the emulator."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import trustme

__all__ = ["EmulatorTLS", "loopback_resolver"]


class EmulatorTLS:
    """A throwaway CA (trustme) and one server certificate for every emulator host name.

    ``ca_bundle`` is a PEM file meant for ``REQUESTS_CA_BUNDLE``: requests, msrest and the
    vendored storage client all read it (``Session.merge_environment_settings``).
    """

    def __init__(self, directory: Path, host_names: Iterable[str]) -> None:
        self._ca = trustme.CA(organization_name="mlboot Azure ML emulator")
        self._cert = self._ca.issue_cert("127.0.0.1", "localhost", *host_names)
        self.ca_bundle = directory / "emulator-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_bundle))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(context)
        return context


def loopback_resolver(
    original: Callable[..., Any], host_names: Iterable[str]
) -> Callable[..., Any]:
    """Wrap ``socket.getaddrinfo`` so that the given names (only) resolve to 127.0.0.1.

    Installed with ``monkeypatch.setattr(socket, "getaddrinfo", ...)`` for the duration of one
    test: nothing outside the test process (no /etc/hosts, no DNS) is touched.
    """
    names = {name.lower() for name in host_names}

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        text = host.decode("ascii", "replace") if isinstance(host, bytes) else host
        if isinstance(text, str) and text.lower().rstrip(".") in names:
            return original("127.0.0.1", port, *args, **kwargs)
        return original(host, port, *args, **kwargs)

    return getaddrinfo
