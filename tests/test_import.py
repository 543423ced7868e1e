"""import mlboot stays free of the SDK, and cheap."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _python(code: str) -> subprocess.CompletedProcess[str]:
    # What a user's interpreter imports: not measured by coverage, which the test sessions start
    # in every child Python (it imports hashlib, among others, before mlboot).
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_PROCESS_")}
    command = [sys.executable, "-c", code]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=120, env=env)  # noqa: S603  (our own interpreter, fixed code)


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


def test_import_mlboot_imports_neither_sdk_nor_mlflow() -> None:
    # The SDK v2 stack loads only with the azureml-v2 backend (import azure.ai.ml alone takes
    # about a second); naming the backend in a config must not load it either.
    code = (
        "import sys, mlboot, mlboot.backend, mlboot._backends._choice, mlboot._workspace\n"
        "heavy = {'azure', 'azureml', 'mlflow', 'marshmallow', 'msrest'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    assert _fresh(code) == "[]"


def test_import_mlboot_prints_nothing() -> None:
    assert _fresh("import mlboot") == ""


def test_version_is_read_lazily_from_the_installed_metadata() -> None:
    import mlboot  # noqa: PLC0415

    assert isinstance(mlboot.__version__, str)
    assert mlboot.__version__


def test_import_mlboot_loads_only_its_exceptions_until_a_name_is_used() -> None:
    # pytest imports mlboot (its plugin) in every project that has it installed: the import must
    # cost next to nothing; attrs, logging and typing load with the first public name used.
    code = (
        "import sys\n"
        "heavy = {'attrs', 'attr', 'logging', 'typing', 'pathlib', 're', 'enum', 'json'}\n"
        "before = set(sys.modules)\n"
        "import mlboot\n"
        "new = set(sys.modules) - before\n"
        "print(sorted(m for m in new if m.startswith('mlboot') or m in heavy))\n"
        "mlboot.Run\n"
        "print('attrs' in sys.modules, 'mlboot._run' in sys.modules)"
    )
    loaded, after_use = _fresh(code).splitlines()
    assert loaded == "['mlboot', 'mlboot.exceptions']"
    assert after_use == "True True"


def test_every_public_name_is_the_object_its_private_module_defines() -> None:
    import importlib  # noqa: PLC0415

    import mlboot  # noqa: PLC0415

    for name in mlboot.__all__:
        if name == "exceptions":
            assert mlboot.exceptions is importlib.import_module("mlboot.exceptions")
            continue
        source = importlib.import_module(f"mlboot.{mlboot._SOURCES[name]}")
        assert getattr(mlboot, name) is getattr(source, name), name
    assert set(mlboot._SOURCES) == set(mlboot.__all__) - {"exceptions"}
    assert set(mlboot.__all__) <= set(dir(mlboot))


def test_star_import_gives_every_public_name() -> None:
    namespace: dict[str, object] = {}
    exec("from mlboot import *", namespace)  # noqa: S102  (fixed code, the behaviour under test)
    import mlboot  # noqa: PLC0415

    assert set(mlboot.__all__) <= set(namespace)


def test_an_unknown_attribute_raises_attribute_error_naming_it() -> None:
    import mlboot  # noqa: PLC0415

    with pytest.raises(AttributeError, match="no attribute 'workspace_from_json'"):
        mlboot.workspace_from_json  # type: ignore[attr-defined]  # noqa: B018  (the lookup fails)


def test_mlboot_warnings_are_not_printed_when_logging_is_not_configured() -> None:
    # Python's last-resort handler writes WARNING records of unconfigured loggers to stderr; a
    # library must leave that choice to the program (NullHandler on the "mlboot" logger, there
    # from the moment any module of mlboot that logs is loaded).
    code = (
        "import logging, mlboot\n"
        "mlboot.submit_script\n"
        "logging.getLogger('mlboot').warning('should stay silent')\n"
        "logging.getLogger('mlboot.sub').error('also silent')\n"
    )
    result = _python(code)
    assert (result.stdout, result.stderr) == ("", "")


def test_every_module_logs_through_the_logger_that_has_the_null_handler() -> None:
    package = Path(__file__).parents[1] / "src" / "mlboot"
    elsewhere = [
        path.name
        for path in package.rglob("*.py")
        if path.name != "_log.py" and 'getLogger("mlboot' in path.read_text(encoding="utf-8")
    ]
    assert elsewhere == []


def test_mlboot_warnings_reach_a_configured_handler() -> None:
    code = (
        "import logging, mlboot\n"
        "logging.basicConfig(format='%(name)s %(message)s')\n"
        "logging.getLogger('mlboot').warning('heard')\n"
    )
    result = _python(code)
    assert result.stderr == "mlboot heard\n"
