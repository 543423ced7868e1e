"""import mlboot stays free of the SDK, and cheap."""

from __future__ import annotations

import subprocess
import sys


def _fresh(code: str) -> str:
    result = subprocess.run(  # noqa: S603  (our own interpreter, fixed code)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return result.stdout.strip()


def test_import_mlboot_does_not_import_azureml_or_other_heavy_packages() -> None:
    code = (
        "import sys, mlboot, mlboot.testing, mlboot.backend, mlboot.exceptions\n"
        "heavy = {'azureml', 'msrest', 'requests', 'packaging', 'pathspec'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    assert _fresh(code) == "[]"


def test_import_mlboot_prints_nothing() -> None:
    assert _fresh("import mlboot") == ""


def test_version_is_read_lazily_from_the_installed_metadata() -> None:
    import mlboot  # noqa: PLC0415

    assert isinstance(mlboot.__version__, str)
    assert mlboot.__version__
