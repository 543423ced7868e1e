"""The import graph of mlboot shows its layers: no circle, one SDK per backend, one seam.

Every ``import`` and ``from ... import`` in ``src/mlboot`` counts, wherever it is: at the top of
a module, under ``if TYPE_CHECKING:``, or inside a function (the lazy imports that keep
``import mlboot`` cheap).  The import of the test for ``import mlboot`` itself is in
``tests/test_import.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).parents[1] / "src"
PACKAGE = SOURCE / "mlboot"
BACKENDS = "mlboot._backends"
SEAM = f"{BACKENDS}._seam"
FACTORY = f"{BACKENDS}._choice"
BACKEND_PACKAGES = (
    f"{BACKENDS}.azureml",
    f"{BACKENDS}.azureml_v2",
    f"{BACKENDS}.local",
    f"{BACKENDS}.fake",
)
V1 = f"{BACKENDS}.azureml"
V2 = f"{BACKENDS}.azureml_v2"
# The SDK v2 stack, each imported only by the azure-ai-ml backend: azure-ai-ml itself, its
# credentials, and MLflow (mlboot's own local tracking reads MLflow's files without it).
V2_SDKS = ("azure.ai.ml", "azure.identity", "azure.core", "mlflow")
# azureml-mlflow's package is inside azureml's namespace: the v2 backend's metrics use it.
V2_AZUREML = "azureml.mlflow"

# Outside mlboot._backends, the only modules that import a backend subpackage, and what each
# imports (every other module outside reaches the backends through the seam and the factory):
# the public names mlboot.LocalBackend and mlboot.testing, and the in-run API, which inside a
# job logs to the run that azureml-core's job set up (no Backend value exists there).
PUBLISHERS = {
    "mlboot": {f"{BACKENDS}.local._local"},
    "mlboot.testing": {f"{BACKENDS}.fake._fake"},
    "mlboot._script_api": {f"{BACKENDS}.azureml._in_run", f"{BACKENDS}.azureml_v2._in_run"},
}
# The modules that make the public calls; a backend never calls back up into them.
CALLS = {
    "mlboot._cli",
    "mlboot._compute",
    "mlboot._run",
    "mlboot._run_list",
    "mlboot._submit",
    "mlboot._workspace",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """The modules ``path`` imports, resolved to absolute names, wherever the import is."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            found.add(stem)
            # ``from mlboot import _snapshot`` imports a module, ``from mlboot import Run`` a name.
            found.update(f"{stem}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    """Each module of mlboot and the modules of mlboot it imports."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {
        name: {target for target in _imports(path) if target in modules and target != name}
        for name, path in modules.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle in ``graph``, as the modules along it, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def test_the_graph_sees_the_lazy_and_type_checking_imports() -> None:
    # The test is only as good as its parser: the imports that keep `import mlboot` cheap sit
    # inside functions and under TYPE_CHECKING, and must be edges too.
    graph = _graph()
    assert f"{BACKENDS}.azureml._azureml" in graph[FACTORY]  # inside a function
    assert "mlboot._environment" in graph[SEAM]  # under TYPE_CHECKING
    assert f"{BACKENDS}.local._local_supervisor" in graph[f"{BACKENDS}.local._local"]


def test_no_module_of_mlboot_imports_itself_through_others() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_a_circle_is_found_and_printed() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def _importers(sdk: str) -> dict[str, set[str]]:
    """Each module of mlboot that imports ``sdk`` (or a module below it), with what it imports."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        targets = {target for target in _imports(path) if _inside(target, sdk)}
        if targets:
            found[_module_name(path)] = targets
    return found


def test_exactly_one_subpackage_imports_azureml() -> None:
    importers = _importers("azureml")
    assert importers, "the azureml-core adapter imports azureml"
    outside = sorted(name for name in importers if not _inside(name, V1))
    # The v2 backend may reach azureml-mlflow (the plugin MLflow reads metrics with), nothing else.
    wrong = [
        name
        for name in outside
        if not (_inside(name, V2) and all(_inside(t, V2_AZUREML) for t in importers[name]))
    ]
    assert wrong == [], f"only {V1} may import azureml ({V2} only {V2_AZUREML})"


def test_exactly_one_subpackage_imports_the_v2_sdks() -> None:
    for sdk in V2_SDKS:
        importers = sorted(_importers(sdk))
        outside = [name for name in importers if not _inside(name, V2)]
        assert outside == [], f"only {V2} may import {sdk}"
    assert _importers("azure.ai.ml"), "the azure-ai-ml backend imports azure.ai.ml"


def test_outside_the_backends_only_the_seam_and_the_factory_are_imported() -> None:
    wrong = {}
    for module, targets in _graph().items():
        if _inside(module, BACKENDS):
            continue
        concrete = {t for t in targets if any(_inside(t, p) for p in BACKEND_PACKAGES)}
        allowed = PUBLISHERS.get(module, set())
        if concrete - allowed:
            wrong[module] = sorted(concrete - allowed)
    assert wrong == {}, f"import a backend through {SEAM} and {FACTORY}, not directly"


def test_a_backend_imports_no_other_backend_and_none_of_the_public_calls() -> None:
    wrong = {}
    for module, targets in _graph().items():
        own = next((p for p in BACKEND_PACKAGES if _inside(module, p)), None)
        if own is None:
            continue
        others = {
            t
            for t in targets
            if t in CALLS or any(_inside(t, p) for p in BACKEND_PACKAGES if p != own)
        }
        if others:
            wrong[module] = sorted(others)
    assert wrong == {}
