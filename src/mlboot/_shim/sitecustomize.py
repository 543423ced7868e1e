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
   :func:`mlboot._tracking_local.patch_offline_run`;
4. it waits for MLflow's file store (``mlflow.store.tracking.file_store``) to be imported: then
   it makes the store note, in the run's journal, the metrics it writes for the run, so that
   their order survives the store's millisecond times
   (:func:`mlboot._tracking_local.patch_mlflow_file_store`).

A script that imports neither pays for one entry in ``sys.meta_path`` and nothing else.
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
_AZUREML_RUN = "azureml.core.run"
_MLFLOW_FILE_STORE = "mlflow.store.tracking.file_store"


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
    def __init__(self, loader: object, name: str, run_dir: str) -> None:
        self._loader = loader
        self._name = name
        self._run_dir = run_dir

    def __getattr__(self, name: str) -> object:
        return getattr(self._loader, name)

    def create_module(self, spec: object) -> object:
        return self._loader.create_module(spec)  # type: ignore[attr-defined]

    def exec_module(self, module: object) -> None:
        self._loader.exec_module(module)  # type: ignore[attr-defined]
        try:
            self._patch(module)
        except Exception as exc:  # noqa: BLE001  (the script's import must go on, whatever)
            import warnings  # noqa: PLC0415

            warnings.warn(
                f"mlboot could not make {self._name} record into the local run ({exc!r}); "
                "the script goes on, and what it logs that way is not recorded",
                RuntimeWarning,
                stacklevel=2,
            )

    def _patch(self, module: object) -> None:
        from pathlib import Path  # noqa: PLC0415

        from mlboot import _tracking_local  # noqa: PLC0415

        if self._name == _AZUREML_RUN:
            _tracking_local.patch_offline_run(module, Path(self._run_dir))
        else:
            run_id = os.environ.get("MLFLOW_RUN_ID", "")
            _tracking_local.patch_mlflow_file_store(module, Path(self._run_dir), run_id)


class _Finder:
    """Finds nothing itself: wraps the loader of the modules it waits for, once each."""

    def __init__(self, run_dir: str) -> None:
        self._run_dir = run_dir
        self._waiting = {_AZUREML_RUN, _MLFLOW_FILE_STORE} - set(sys.modules)

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name not in self._waiting:
            return None
        self._waiting.discard(name)  # once is enough
        if not self._waiting:
            sys.meta_path.remove(self)
        for finder in sys.meta_path:
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            spec: ModuleSpec | None = find(name, path, target) if find is not None else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _Loader(spec.loader, name, self._run_dir)  # type: ignore[assignment]
                return spec
        return None


def _install() -> None:
    run_dir = os.environ.get("MLBOOT_RUN_DIR")
    if run_dir:
        finder = _Finder(run_dir)
        if finder._waiting:  # noqa: SLF001  (its own class)
            sys.meta_path.insert(0, finder)


_unshadow()
_install()
