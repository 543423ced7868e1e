# ruff: noqa: INP001  (a folder put on PYTHONPATH, not a package)
"""mlboot's start-up hook for a local run's script (and the Python processes it starts).

The local backend puts this file's folder first on the script's ``PYTHONPATH``, so Python runs
it at start-up, as it runs any ``sitecustomize``.  It does three small things and imports
nothing beyond what Python has already loaded:

1. it takes its folder off ``sys.path`` again, so the script sees the path it would see anyway;
2. it runs the ``sitecustomize`` it shadows, if the interpreter has one (Debian's, conda's...);
3. it waits for ``azureml.core.run`` to be imported: only then, and only if the script imports
   azureml-core, it makes azureml-core's offline run (what ``Run.get_context()`` returns
   outside Azure ML) record into the local run, through
   :func:`mlboot._tracking_local.patch_offline_run`.  A script that never imports azureml-core
   pays for one entry in ``sys.meta_path`` and nothing else.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

_HERE = os.path.dirname(os.path.abspath(__file__))  # noqa: PTH100, PTH120  (no pathlib at start-up)
_TARGET = "azureml.core.run"


def _unshadow() -> None:
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != _HERE]  # noqa: PTH100
    from importlib.machinery import PathFinder  # noqa: PLC0415  (already loaded by Python)

    spec = PathFinder.find_spec("sitecustomize", sys.path)
    if spec is not None and spec.loader is not None:
        from importlib.util import module_from_spec  # noqa: PLC0415

        module = module_from_spec(spec)
        sys.modules["sitecustomize"] = module
        spec.loader.exec_module(module)


class _Loader:
    def __init__(self, loader: object, run_dir: str) -> None:
        self._loader = loader
        self._run_dir = run_dir

    def __getattr__(self, name: str) -> object:
        return getattr(self._loader, name)

    def create_module(self, spec: object) -> object:
        return self._loader.create_module(spec)  # type: ignore[attr-defined]

    def exec_module(self, module: object) -> None:
        self._loader.exec_module(module)  # type: ignore[attr-defined]
        from pathlib import Path  # noqa: PLC0415

        from mlboot._tracking_local import patch_offline_run  # noqa: PLC0415

        patch_offline_run(module, Path(self._run_dir))


class _AzuremlRunFinder:
    """Finds nothing itself: wraps the loader of ``azureml.core.run`` the other finders find."""

    def __init__(self, run_dir: str) -> None:
        self._run_dir = run_dir

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name != _TARGET:
            return None
        sys.meta_path.remove(self)  # once is enough
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec: ModuleSpec | None = find(name, path, target) if find is not None else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _Loader(spec.loader, self._run_dir)  # type: ignore[assignment]
                return spec
        return None


def _install() -> None:
    run_dir = os.environ.get("MLBOOT_RUN_DIR")
    if run_dir and _TARGET not in sys.modules:
        sys.meta_path.insert(0, _AzuremlRunFinder(run_dir))


_unshadow()
_install()
