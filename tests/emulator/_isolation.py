"""Point the real azureml-core at an emulator for one test, and away from everything else."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ._tls import loopback_resolver

_T = TypeVar("_T")

if TYPE_CHECKING:
    import pytest

    from ._emulator import Emulator

__all__ = ["FAST_SDK_KNOBS", "isolate_sdk", "sdk_run_warnings", "stop_sdk_daemons"]

# Variables that would send the SDK elsewhere (service URL overrides, ambient credentials,
# proxies) or make it read a real user's files.
_CLEARED_VARIABLES = (
    "AZUREML_SERVICE_ENDPOINT",
    "AZUREML_EXPERIMENTATION_HOST",
    "AZUREML_DISCOVERY_SERVICE_ENDPOINT",
    "AZUREML_MMS_TEST_ENDPOINT",
    "AZUREML_RUN_TOKEN",
    "AZUREML_RUN_ID",
    "AZUREML_ARM_SUBSCRIPTION",
    "AZUREML_ARM_RESOURCEGROUP",
    "AZUREML_ARM_WORKSPACE_NAME",
    "AZUREML_SERVICE_PRINCIPAL_TENANT_ID",
    "AZUREML_SERVICE_PRINCIPAL_ID",
    "AZUREML_SERVICE_PRINCIPAL_PASSWORD",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "CURL_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "AML_FORCE_EXECUTE_WITH_ZIP",
)

# The SDK's own knobs for its waits, and the values tests use.
#  - clientbase.py reads AZUREML_DEFAULT_BACKOFF (429, default 32 s), AZUREML_DEFAULT_500_BACKOFF
#    (default 2 s) and AZUREML_DEFAULT_503_BACKOFF (default random 2..10 s) ONCE, at import: the
#    variables are set for code imported later, and the module constants they fed are set too.
#  - run.py reads AZUREML_RUN_POLLING_INTERVAL_MIN/MAX (default 2 s / 60 s) ONCE, at import, and
#    keeps the raw string: a value from the environment makes wait_for_completion fail with a
#    TypeError (str vs float). Only the class attributes can be set, as numbers.
FAST_SDK_KNOBS: dict[str, float] = {
    "AZUREML_DEFAULT_BACKOFF": 0,
    "AZUREML_DEFAULT_500_BACKOFF": 0,
    "AZUREML_DEFAULT_503_BACKOFF": 0,
    "AZUREML_RUN_POLLING_INTERVAL_MIN": 0.05,
    "AZUREML_RUN_POLLING_INTERVAL_MAX": 0.05,
}


def isolate_sdk(monkeypatch: pytest.MonkeyPatch, emulator: Emulator, home: Path) -> None:
    """Make this test's azureml-core talk to ``emulator`` only, with short waits.

    Everything goes through ``monkeypatch`` and is undone after the test:

    * ``HOME``/``USERPROFILE`` and ``AZURE_CONFIG_DIR`` point into ``home`` (a fresh folder): the
      discovery cache (``~/.azureml/.discovery``), the snapshot cache
      (``~/.azureml/.projectcontent``) and the az CLI folder start empty, and no real user's file
      is read or written;
    * ``REQUESTS_CA_BUNDLE`` trusts the emulator's throwaway CA (requests, msrest and the vendored
      storage client all honour it); proxy and service-override variables are removed;
    * ``socket.getaddrinfo`` resolves the emulator's blob host name (only) to 127.0.0.1;
    * the SDK's documented wait knobs (:data:`FAST_SDK_KNOBS`) are set.
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / ".azure").mkdir(exist_ok=True)
    for name in _CLEARED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("AZUREML_DEV_URL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(home / ".azure"))
    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(emulator.ca_bundle))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost,.localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost,.localhost")
    for name, value in FAST_SDK_KNOBS.items():
        monkeypatch.setenv(name, str(value))

    monkeypatch.setattr(
        socket, "getaddrinfo", loopback_resolver(socket.getaddrinfo, emulator.host_names)
    )

    _set_imported_knobs(monkeypatch, home)


def _set_imported_knobs(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    # Imported only now, so that a first import sees the variables set above.
    from azureml._base_sdk_common import service_discovery  # noqa: PLC0415
    from azureml._restclient import clientbase  # noqa: PLC0415
    from azureml.core.run import Run  # noqa: PLC0415

    monkeypatch.setattr(
        clientbase, "DEFAULT_BACKOFF", int(FAST_SDK_KNOBS["AZUREML_DEFAULT_BACKOFF"])
    )
    monkeypatch.setattr(
        clientbase, "DEFAULT_500_BACKOFF", int(FAST_SDK_KNOBS["AZUREML_DEFAULT_500_BACKOFF"])
    )
    monkeypatch.setattr(
        clientbase, "DEFAULT_503_BACKOFF", int(FAST_SDK_KNOBS["AZUREML_DEFAULT_503_BACKOFF"])
    )
    monkeypatch.setattr(
        Run,
        "_WAIT_COMPLETION_POLLING_INTERVAL_MIN",
        FAST_SDK_KNOBS["AZUREML_RUN_POLLING_INTERVAL_MIN"],
    )
    monkeypatch.setattr(
        Run,
        "_WAIT_COMPLETION_POLLING_INTERVAL_MAX",
        FAST_SDK_KNOBS["AZUREML_RUN_POLLING_INTERVAL_MAX"],
    )

    # CachedServiceDiscovery's cache path is a default argument, computed from HOME when the
    # module was first imported (possibly before this test set HOME): re-point it.
    discovery_init: Any = service_discovery.CachedServiceDiscovery.__init__
    cache_file = str(home / ".azureml" / ".discovery")
    if discovery_init.__defaults__ != (cache_file,):
        monkeypatch.setattr(discovery_init, "__defaults__", (cache_file,))


def stop_sdk_daemons() -> int:
    """Stop the SDK's self-re-arming background timers (azureml ``Daemon``); return how many.

    ``Run.cancel()`` flushes the metrics client, whose ``BatchTaskQueue`` starts a ``Daemon``
    that re-arms a 1 s ``threading.Timer`` for the rest of the process. Each re-arm calls the
    deprecated ``Timer.setDaemon``: under ``filterwarnings = error`` that DeprecationWarning is
    raised in the timer thread of whichever test runs next. Call this at the end of a test.
    """
    try:
        from azureml._common.async_utils.daemon import Daemon  # noqa: PLC0415
    except ImportError:  # pragma: no cover - SDK layout changed
        return 0
    stopped = 0
    for thread in threading.enumerate():
        if not isinstance(thread, threading.Timer):
            continue
        owner = getattr(thread.function, "__self__", None)
        if isinstance(owner, Daemon) and not owner.kill:
            owner.kill = True
            thread.cancel()
            stopped += 1
    return stopped


# Warnings the SDK itself raises on the run paths (the pytest config turns warnings into errors):
# - its vendored ruamel.yaml ("load will be removed", "round_trip_load_all will be removed"), when
#   Environment() builds its conda dependencies and when the run configuration is serialised;
# - the stdlib, when azureml.core._metrics first imports imghdr (deprecated in 3.11, gone in 3.13);
# - its metrics client's timer thread (setDaemon), on a raw submit that reports metrics.
_SDK_RUN_WARNINGS = (
    r"ignore:\s*(load|round_trip_load_all) will be removed, use:PendingDeprecationWarning",
    r"ignore:'imghdr' is deprecated:DeprecationWarning",
    r"ignore:setDaemon\(\) is deprecated:DeprecationWarning",
)


def sdk_run_warnings(test: _T) -> _T:
    """Mark a test that drives the SDK's run paths: ignore the warnings the SDK itself raises."""
    import pytest  # noqa: PLC0415  (only at collection time; the module stays importable without)

    for spec in _SDK_RUN_WARNINGS:
        test = pytest.mark.filterwarnings(spec)(test)
    return test
