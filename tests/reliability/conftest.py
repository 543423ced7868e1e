"""Fixtures for the reliability suite, and the summary it prints at the end of the session."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_ledger import KINDS, LEDGER, RELIABILITY_PROPERTY, outcomes_by_kind

import mlboot
from mlboot._retry import DEFAULT_POLICY
from mlboot.testing import FakeBackend

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"

_AMBIENT_VARIABLES = (
    "MLBOOT_SUBSCRIPTION_ID",
    "MLBOOT_RESOURCE_GROUP",
    "MLBOOT_WORKSPACE_NAME",
    "MLBOOT_TENANT_ID",
    "MLBOOT_CLOUD",
    "MLBOOT_BACKEND",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZUREML_SERVICE_PRINCIPAL_TENANT_ID",
    "AZUREML_SERVICE_PRINCIPAL_ID",
    "AZUREML_SERVICE_PRINCIPAL_PASSWORD",
    "MSI_ENDPOINT",
    "IDENTITY_ENDPOINT",
)


@pytest.fixture(autouse=True)
def _private_environment_and_secret_scan(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> Iterator[None]:
    """No ambient configuration leaks in; nothing a test logged or printed leaks a secret out."""
    for name in _AMBIENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    caplog.set_level(logging.DEBUG, logger="mlboot")
    yield
    # Whatever the test did not read itself is still here; what it read it scanned itself.
    captured = capsys.readouterr()
    logged = "\n".join(
        f"{record.getMessage()} {record.exc_text or ''}"
        for phase in ("setup", "call")
        for record in caplog.get_records(phase)
    )
    leaks = LEDGER.scan(logged, where=f"{request.node.nodeid} log")
    leaks += LEDGER.scan(captured.out + captured.err, where=f"{request.node.nodeid} output")
    assert leaks == []


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    # In a folder of its own: cases that search upwards from tmp_path must not find it.
    folder = tmp_path / "ws"
    folder.mkdir()
    path = folder / "config.json"
    path.write_text(
        json.dumps(
            {"subscription_id": SUBSCRIPTION, "resource_group": "rg", "workspace_name": "ws-rel"}
        ),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def workspace(fake: FakeBackend, config_path: Path) -> mlboot.Workspace:
    """A workspace on the fake, with the lookup it cost already forgotten."""
    found = mlboot.workspace_from_config(config_path, backend=fake)
    fake.calls.clear()
    return found


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "train.py").write_text("print('training')\n", encoding="utf-8")
    return root


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Carry each test's ``reliability(kind)`` marks into its reports, for the summary."""
    for item in items:
        for mark in item.iter_markers("reliability"):
            item.user_properties.append((RELIABILITY_PROPERTY, str(mark.args[0])))


# Under pytest-xdist each worker counts in its own LEDGER: the worker hands its counters over when
# it finishes and the controller, which prints the summary, adds them up.
_LEDGER_KEY = "mlboot_reliability_ledger"


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[_LEDGER_KEY] = LEDGER.to_json()


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: only called where xdist is loaded
def pytest_testnodedown(node: object, error: object) -> None:
    LEDGER.merge(getattr(node, "workeroutput", {}).get(_LEDGER_KEY, {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    ledger = LEDGER
    by_kind = outcomes_by_kind(
        report for reports in terminalreporter.stats.values() for report in reports
    )
    if (
        not ledger.bad_inputs_tried
        and not ledger.faults_injected
        and not ledger.texts_scanned
        and not by_kind
    ):
        return
    write = terminalreporter.write_line
    terminalreporter.section("mlboot reliability summary")
    for kind, shows in KINDS.items():
        outcomes = list(by_kind.get(kind, {}).values())
        if not outcomes:
            continue
        failed = sorted(n for n, o in by_kind[kind].items() if o == "failed")
        skipped = outcomes.count("skipped")
        write(
            f"{kind}: {len(outcomes) - skipped} ran, {outcomes.count('passed')} held ({shows})"
            + (f"; skipped: {skipped}" if skipped else "")
            + (f"; NOT held: {failed}" if failed else "")
        )
    tried = len(ledger.bad_inputs_tried)
    write(
        f"bad inputs tried: {tried}; handled with the exact typed error: "
        f"{len(ledger.bad_inputs_handled)}; not handled: "
        f"{sorted(ledger.bad_inputs_tried - ledger.bad_inputs_handled) or 'none'}"
    )
    write(
        f"  of those, refused with zero remote calls: "
        f"{len(ledger.bad_inputs_handled - ledger.bad_inputs_with_lookup)}; after one compute "
        f"lookup (new-name rules): {len(ledger.bad_inputs_with_lookup)}"
    )
    write(f"property-based examples run on the validators: {ledger.property_examples}")
    write(
        f"faults injected: {ledger.faults_injected}; survived (the call still succeeded): "
        f"{ledger.faults_survived}; the rest ended in the expected typed error (a call mlboot "
        "leaves to the SDK's retries, or the bound reached); permanent failures that failed "
        f"fast (1 attempt): {ledger.permanent_failures_fast}"
    )
    write(
        f"attempt bound observed: {ledger.attempts_observed_max} attempts at most "
        f"(policy: {DEFAULT_POLICY.attempts} attempts, {DEFAULT_POLICY.max_total_seconds:g} s; "
        f"bound reached in tests: {ledger.attempt_bound})"
    )
    if ledger.deadline_calls:
        write(
            f"time-outs and bounds under lasting faults: {ledger.deadline_calls} calls, "
            f"{ledger.deadline_calls_held} ended within theirs (at most "
            f"{ledger.deadline_share_max:.0%} of the bound used)"
        )
    write(f"interrupts handled: {ledger.interrupts}")
    if ledger.no_credentials_seconds is not None:
        in_all, after_import = ledger.no_credentials_seconds
        write(
            "no credentials with CI=true: workspace_from_config failed "
            f"{after_import:.2f} s after the SDK's import ({in_all:.2f} s in all, from a fresh "
            "child process)"
        )
    write(
        f"secrets leaked: {ledger.secrets_leaked} (planted 2; scanned {ledger.texts_scanned} "
        f"captured texts, {ledger.chars_scanned} characters)"
    )
