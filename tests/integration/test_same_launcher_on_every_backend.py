"""The issue's "done when": one launcher file, unchanged, on local, azureml-core and azure-ai-ml.

``launchers/launch.py`` is run as a script (``runpy``, in this process, so the emulator's
isolation applies) from a project folder whose ``config.json`` chooses the backend with its
``mlboot_backend`` key, and nothing else differs.  On the local backend the training script
really runs; on the emulators the run is programmed to report what that script would: the
same metrics and the same output file.  Each backend must print the same results.
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pytest

from emulator import Emulator, StaticTokenCredential, isolate_v2_sdk

LAUNCHER = Path(__file__).parent / "launchers" / "launch.py"

TRAIN = """\
import sys
import mlboot

epochs = int(sys.argv[sys.argv.index("--epochs") + 1])
for epoch in range(epochs):
    mlboot.log_metric("loss", 0.5 / (epoch + 1), step=epoch)
mlboot.log_metric("accuracy", 0.75)
(mlboot.output_dir() / "model.txt").write_text("weights", encoding="utf-8")
"""

EXPECTED = {
    "status": "Completed",
    "metrics": {"accuracy": [0.75], "loss": [0.5, 0.25]},
    "outputs": {"outputs/model.txt": "weights"},
}


def _project(folder: Path, workspace: dict[str, str], backend: str) -> Path:
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "train.py").write_text(TRAIN, encoding="utf-8")
    (folder / "src" / "requirements.txt").write_text("attrs\n", encoding="utf-8")
    config = {**workspace, "mlboot_backend": backend}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def _emulated(emulator: Emulator, *, v2: bool) -> dict[str, str]:
    """Make the emulator's cluster, and program the run to report what TRAIN logs and writes."""
    emulator.add_compute("cpu-cluster", vm_size="STANDARD_D2_V3", max_nodes=2)
    metrics = {"loss": [0.5, 0.25], "accuracy": 0.75}
    outputs = {"model.txt": b"weights"}
    if v2:
        emulator.program_job(("Completed",), metrics=metrics, outputs=outputs)
    else:
        emulator.program_run(("Completed",), metrics=metrics, outputs=outputs)
    state = emulator.workspace
    return {
        "subscription_id": state.subscription_id,
        "resource_group": state.resource_group,
        "workspace_name": state.name,
    }


def _sign_in(monkeypatch: pytest.MonkeyPatch, module: str, credential: Any) -> None:
    """The login the machine would have: what mlboot's default chain (auth=None) resolves to.

    The launcher passes no ``auth=``; each backend asks ``resolve_default_auth``, which here
    answers the emulator's credential instead of probing the CLI and the environment.
    """
    monkeypatch.setattr(f"{module}.resolve_default_auth", lambda **_: (credential, ("emulator",)))


def _launch(project: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> dict[str, Any]:
    monkeypatch.chdir(project)
    capsys.readouterr()
    runpy.run_path(str(LAUNCHER), run_name="__main__")
    printed: dict[str, Any] = json.loads(capsys.readouterr().out)
    return printed


def test_the_launcher_runs_unchanged_on_the_local_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = {
        "subscription_id": "00000000-0000-0000-0000-000000000000",
        "resource_group": "rg",
        "workspace_name": "ws-local",
    }
    project = _project(tmp_path / "project", workspace, "local")

    assert _launch(project, monkeypatch, capsys) == EXPECTED
    assert (project / ".mlboot" / "runs").is_dir()  # it ran here, not on an emulator


pytest.importorskip("azureml.core", reason="the integration group (azureml-core) is not installed")


def test_the_launcher_runs_unchanged_on_azureml_core(
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = _project(tmp_path / "project", _emulated(emulator, v2=False), "azureml")
    _sign_in(monkeypatch, "mlboot._backends.azureml._azureml", emulator.auth)

    assert _launch(project, monkeypatch, capsys) == EXPECTED
    assert emulator.count("arm.compute.put") == 0  # the existing cluster was reused


# azure-ai-ml's jobs.download hands azure-storage-blob a BlobProperties and reads blobs with
# content_as_bytes, both deprecated there (DeprecationWarnings, errors under this project's
# warning filters, which would end the download).
@pytest.mark.filterwarnings("ignore:The use of a 'BlobProperties' instance:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:content_as_bytes is deprecated:DeprecationWarning")
def test_the_launcher_runs_unchanged_on_azure_ai_ml(
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("azure.ai.ml", reason="the v2 extra (mlboot[v2]) is not installed")
    isolate_v2_sdk(monkeypatch, emulator)
    project = _project(tmp_path / "project", _emulated(emulator, v2=True), "azureml-v2")
    _sign_in(
        monkeypatch,
        "mlboot._backends.azureml_v2._azureml_v2",
        StaticTokenCredential.for_emulator(emulator),
    )

    assert _launch(project, monkeypatch, capsys) == EXPECTED
    assert emulator.count("v2.job.put") == 1  # submitted through azure-ai-ml's job PUT
