"""mlboot's pytest plugin: fixtures that keep a training repository's tests away from Azure.

pytest loads this module in every project where mlboot is installed, through the ``pytest11``
entry point named ``mlboot`` (``-p no:mlboot`` turns it off).  Loading it changes nothing and
imports no part of azureml: its fixtures act only in the tests that ask for them, and the
``mlboot_offline`` ini option is off unless set.

Every fixture is function-scoped, and within one test they share one fake:

``mlboot_fake``
    A fresh :class:`~mlboot.testing.FakeBackend`: program it, then inspect its calls.
``mlboot_config_file``
    A valid ``config.json`` in a folder of its own (not ``tmp_path``), naming subscription
    ``00000000-0000-0000-0000-000000000000``, resource group ``rg-mlboot-test`` and workspace
    ``ws-mlboot-test``.  Override this fixture to use your own file.
``mlboot_workspace``
    The :class:`~mlboot.Workspace` that ``workspace_from_config(mlboot_config_file,
    backend=mlboot_fake)`` returns, unaffected by any ``MLBOOT_*`` environment variables.
``mlboot_offline``
    Makes :func:`~mlboot.workspace_from_config` called *without* ``backend=`` use
    ``mlboot_fake`` where it would use Azure, for the test only; returns that fake.  Setting the
    ini option ``mlboot_offline = true`` applies it to every test.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mlboot import Workspace
    from mlboot.testing import FakeBackend

__all__ = ["mlboot_config_file", "mlboot_fake", "mlboot_offline", "mlboot_workspace"]

_INI_OFFLINE = "mlboot_offline"
# pytest's tag for a boolean ini option.  A variable, not a literal argument: mypy would take a
# literal string there for a type expression, and ``type=bool`` needs pytest 9.2.
_INI_BOOL: Literal["bool"] = "bool"

# The config every generated workspace comes from.  Valid by every rule mlboot checks, and
# plainly not a real subscription.
_CONFIG_JSON = """\
{
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "resource_group": "rg-mlboot-test",
    "workspace_name": "ws-mlboot-test"
}
"""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        _INI_OFFLINE,
        type=_INI_BOOL,
        default=False,
        help="mlboot: give every test the mlboot_offline fixture, so that "
        "workspace_from_config() without backend= uses a FakeBackend instead of Azure.",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Registered only when asked for, so that projects which do not set the option get no
    # autouse fixture at all (nothing extra in their fixture closures or --setup-show).
    if config.getini(_INI_OFFLINE):
        config.pluginmanager.register(_OfflineEverywhere(), "mlboot-offline-everywhere")


class _OfflineEverywhere:
    """The ``mlboot_offline = true`` ini option: every test runs with ``mlboot_offline``."""

    @pytest.fixture(autouse=True)
    def _mlboot_offline_everywhere(self, mlboot_offline: FakeBackend) -> FakeBackend:
        return mlboot_offline


@pytest.fixture
def mlboot_fake() -> FakeBackend:
    """A fresh :class:`mlboot.testing.FakeBackend`, shared by the mlboot fixtures of one test."""
    # Imported here, not at the top: pytest imports this plugin in every project that has
    # mlboot installed, where loading it should cost no more than `import mlboot` itself.
    from mlboot.testing import FakeBackend  # noqa: PLC0415

    return FakeBackend()


@pytest.fixture
def mlboot_config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid workspace ``config.json``, alone in a folder of its own.

    Names subscription ``00000000-0000-0000-0000-000000000000``, resource group
    ``rg-mlboot-test`` and workspace ``ws-mlboot-test``.  The folder is not ``tmp_path``, so it
    never shows up among a test's own files.
    """
    path = tmp_path_factory.mktemp("mlboot-config") / "config.json"
    path.write_text(_CONFIG_JSON, encoding="utf-8")
    return path


@pytest.fixture
def mlboot_workspace(mlboot_fake: FakeBackend, mlboot_config_file: Path) -> Workspace:
    """A :class:`mlboot.Workspace` backed by ``mlboot_fake``, loaded from ``mlboot_config_file``.

    ``MLBOOT_*`` environment variables are ignored while it is loaded, so the workspace is the
    one the file names wherever the tests run; the fake has recorded one ``get_workspace``.
    """
    from mlboot._config import ENV_VARIABLES  # noqa: PLC0415  (see mlboot_fake)
    from mlboot._workspace import workspace_from_config  # noqa: PLC0415

    with pytest.MonkeyPatch.context() as patch:
        for variable in ENV_VARIABLES.values():
            patch.delenv(variable, raising=False)
        return workspace_from_config(mlboot_config_file, backend=mlboot_fake)


@pytest.fixture
def mlboot_offline(mlboot_fake: FakeBackend) -> Iterator[FakeBackend]:
    """Make ``workspace_from_config()`` without ``backend=`` use ``mlboot_fake``; return it.

    For code under test that finds its own workspace: the config file is still searched for and
    validated as usual; only the Azure backend is replaced (a config that chooses another of
    mlboot's backends keeps it).  Undone when the test ends.  It reaches code in this process
    only, not programs a test starts.
    """
    from mlboot.testing import use_backend  # noqa: PLC0415  (see mlboot_fake)

    with use_backend(mlboot_fake):
        yield mlboot_fake
