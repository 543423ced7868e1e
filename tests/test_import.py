"""import mlboot stays free of the SDK, and cheap."""

from __future__ import annotations

import subprocess
import sys


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  (our own interpreter, fixed code)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )


def _fresh(code: str) -> str:
    return _python(code).stdout.strip()


def test_import_mlboot_does_not_import_azureml_or_other_heavy_packages() -> None:
    code = (
        "import sys, mlboot, mlboot.testing, mlboot.backend, mlboot.exceptions\n"
        "heavy = {'azureml', 'msrest', 'requests', 'packaging', 'pathspec', 'tempfile',\n"
        "         'hashlib'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    assert _fresh(code) == "[]"


def test_import_mlboot_prints_nothing() -> None:
    assert _fresh("import mlboot") == ""


def test_version_is_read_lazily_from_the_installed_metadata() -> None:
    import mlboot  # noqa: PLC0415

    assert isinstance(mlboot.__version__, str)
    assert mlboot.__version__


def test_mlboot_warnings_are_not_printed_when_logging_is_not_configured() -> None:
    # Python's last-resort handler writes WARNING records of unconfigured loggers to stderr; a
    # library must leave that choice to the program (NullHandler on the "mlboot" logger).
    code = (
        "import logging, mlboot\n"
        "logging.getLogger('mlboot').warning('should stay silent')\n"
        "logging.getLogger('mlboot.sub').error('also silent')\n"
    )
    result = _python(code)
    assert (result.stdout, result.stderr) == ("", "")


def test_mlboot_warnings_reach_a_configured_handler() -> None:
    code = (
        "import logging, mlboot\n"
        "logging.basicConfig(format='%(name)s %(message)s')\n"
        "logging.getLogger('mlboot').warning('heard')\n"
    )
    result = _python(code)
    assert result.stderr == "mlboot heard\n"
