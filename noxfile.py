"""Developer tasks: `nox` runs the default sessions; `nox -l` lists them all.

Which Pythons the sessions run on (see `session_pythons`):

- on a developer's machine, every supported version (3.10 to 3.13, from the pyproject
  classifiers) that is installed, as ``python3.X`` on the PATH or as the Python running nox;
  the sessions that need one Python (``integration``, ``pyright``, ``docs``, ``bench``) take the
  newest of those, ``lint`` the oldest.  One Python is enough for ``nox`` to pass.
- on CI (the ``CI`` environment variable set, as ``.ci/run`` has it), every supported version,
  found or not: a missing one fails its sessions with "interpreter not found".

nox never downloads a Python (``download_python = "never"``): what runs is what is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import nox

nox.needs_version = ">=2025.10.14"  # the first with nox.options.download_python
nox.options.default_venv_backend = "uv|virtualenv"
# `coverage` comes after every session that measures (tests, integration): it combines their data.
nox.options.sessions = [
    "lint",
    "typecheck",
    "pyright",
    "tests",
    "wheel",
    "integration",
    "docs",
    "coverage",
]
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"

PYPROJECT = nox.project.load_toml("pyproject.toml")
ROOT = Path(__file__).parent

_FALSE = {"", "0", "false", "no", "off"}


def is_ci(environ: Mapping[str, str]) -> bool:
    """``CI`` set to anything but an empty or false-looking value, as CI services set it."""
    return environ.get("CI", "").strip().lower() not in _FALSE


def python_runs(version: str) -> bool:
    """Whether ``python<version>`` on the PATH starts and is that version.

    A pyenv shim for a version that is installed but not selected exists on the PATH and fails
    when run, so finding the file is not enough.
    """
    executable = shutil.which(f"python{version}")
    if executable is None:
        return False
    try:
        answer = subprocess.run(  # noqa: S603  (an interpreter found on the PATH, fixed code)
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return answer.returncode == 0 and answer.stdout.strip() == version


def session_pythons(
    supported: Iterable[str],
    *,
    ci: bool,
    current: str = f"{sys.version_info.major}.{sys.version_info.minor}",
    runs: Callable[[str], bool] = python_runs,
) -> list[str]:
    """The Python versions the version sessions run on, oldest first.

    On CI: every supported version, so that a missing interpreter fails the run.  Elsewhere: the
    supported versions that are installed (``runs``), always counting the Python running nox
    (``current``).  When none of them is installed, every supported version, so that nox says
    which interpreters it did not find instead of running nothing.
    """
    versions = list(supported)
    if ci:
        return versions
    found = [v for v in versions if v == current or runs(v)]
    return found or versions


SUPPORTED = nox.project.python_versions(PYPROJECT)  # every version the classifiers promise
PYTHONS = session_pythons(SUPPORTED, ci=is_ci(os.environ))
NEWEST, OLDEST = PYTHONS[-1], PYTHONS[0]


def _install(session: nox.Session, *groups: str) -> None:
    requirements = [r for g in groups for r in nox.project.dependency_groups(PYPROJECT, g)]
    session.install("-e", ".", *requirements)


# pytest under coverage (branch coverage; parallel data files, one per process, that the
# `coverage` session combines; see [tool.coverage] in pyproject.toml).
_MEASURED = ("coverage", "run", "-m", "pytest")

# The unit selection: everything but tests/integration, and not the contract suite's parameters
# marked integration (the azureml-core backend on the emulator, which the integration session
# runs, with the emulator's dependencies).
_UNIT = ("--ignore=tests/integration", "-m", "not integration", "-p", "no:cacheprovider")


# pytest-xdist, one worker per CPU (at most 4: beyond that start-up outweighs the gain), each
# test file whole on one worker (``loadfile``): the examples of a documentation page share one
# namespace, in order, and a module's fixtures are set up once.  The reliability summary adds up
# its workers' counters (tests/reliability/conftest.py).
_PARALLEL = ("-n", str(max(1, min(4, os.cpu_count() or 1))), "--dist", "loadfile")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Unit, contract and documentation-example tests (no network beyond loopback).

    Coverage is measured on the newest Python only (with the integration session's, it is what
    the floor is set against); the other versions run the same tests unmeasured, which is faster.
    Every version runs them in parallel (``_PARALLEL``; ``nox -s tests -- -n 0`` runs them in one
    process): the xdist workers are Python processes the tests start, measured as any other
    (``patch = ["subprocess"]``), and the total is the same as in one process (85.6 % of the unit
    tests alone, both ways).
    """
    _install(session, "tests")
    if session.python == NEWEST:
        session.run(*_MEASURED, *_UNIT, *_PARALLEL, *session.posargs)
    else:
        session.run("pytest", *_UNIT, *_PARALLEL, *session.posargs)


@nox.session(python=NEWEST)
def integration(session: nox.Session) -> None:
    """The real SDK end to end against the Azure ML emulator on 127.0.0.1, in parallel.

    Each test has its own emulator (its own port and state), so the files run on ``_PARALLEL``'s
    workers, measured as in ``tests``; ``nox -s integration -- -n 0`` runs them in one process.
    """
    _install(session, "tests", "integration")
    # tests/integration, and the contract suite's parameters marked integration (the
    # azureml-core backend on the emulator; the fake and local ones ran in `tests`).
    session.run(
        *_MEASURED,
        "tests/integration",
        "tests/contract",
        "-m",
        "integration",
        "-p",
        "no:cacheprovider",
        *_PARALLEL,
        *session.posargs,
    )


# The tests of what depends on the installed files rather than on the code alone: the local
# backend (its supervisor starts from mlboot's installed folder, without the rest of mlboot), the
# in-run API and the sitecustomize hook a local run's script gets, the console script, the
# pytest plugin's entry point, the lazy imports, and the contract suite over the backends.
_FROM_INSTALLED_FILES = (
    "tests/contract",
    "tests/test_cli.py",
    "tests/test_cli_json.py",
    "tests/test_import.py",
    "tests/test_links.py",
    "tests/test_local.py",
    "tests/test_local_disk.py",
    "tests/test_local_file_size_limit.py",
    "tests/test_local_supervisor.py",
    "tests/test_local_supervisor_faults.py",
    "tests/test_plot.py",
    "tests/test_pytest_plugin.py",
    "tests/test_script_api.py",
    "tests/test_tracking_local.py",
)


@nox.session(python=NEWEST)
def wheel(session: nox.Session) -> None:
    """The tests of the installed files against the built wheel, as users get it (not the checkout).

    The local supervisor then starts from the installed files, so a module or data file the
    wheel leaves out fails here.  Not measured for coverage (the `tests` sessions are).
    """
    # Not session.create_tmp(): it points TMPDIR into the checkout, and the tests' folders must
    # not be inside a git repository (a snapshot's git details would then be recorded).
    out = Path(tempfile.mkdtemp(prefix="mlboot-wheel-")) / "dist"
    session.install(*PYPROJECT["build-system"]["requires"])
    session.run("hatchling", "build", "--target", "wheel", "--directory", str(out))
    (wheel_file,) = out.glob("mlboot-*.whl")
    session.install(str(wheel_file), *nox.project.dependency_groups(PYPROJECT, "tests"))
    session.run(
        "python",
        "-c",
        "import pathlib, sys, mlboot._backends.local._local_supervisor as s; "
        "p = pathlib.Path(s.__file__).resolve(); "
        f"sys.exit(0 if {str(ROOT / 'src')!r} not in str(p) else 'mlboot imports from the "
        "checkout, not the installed wheel: ' + str(p))",
    )
    session.run("pytest", *_FROM_INSTALLED_FILES, *_UNIT, *_PARALLEL, *session.posargs)
    shutil.rmtree(out.parent, ignore_errors=True)


@nox.session(python=NEWEST)
def coverage(session: nox.Session) -> None:
    """Combine the coverage data of the test sessions and fail under the floor.

    The floor is ``fail_under`` in ``[tool.coverage.report]`` (pyproject.toml); the report lists
    the files not fully covered.  Run after `tests` and `integration` (``nox`` does).
    """
    session.install(
        *(r for r in nox.project.dependency_groups(PYPROJECT, "tests") if "coverage" in r)
    )
    session.run("coverage", "combine")
    session.run("coverage", "report")


@nox.session(python=OLDEST)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over everything."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=list(dict.fromkeys((OLDEST, NEWEST))))
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package and on the never-executed typing test file.

    On the oldest and the newest Python: mypy reads version checks (``sys.version_info``) for
    the version it is told, so the versions between add nothing the two ends do not see.
    """
    _install(session, "typecheck", "tests")
    session.run("mypy", "src", "tests/typing", f"--python-version={session.python}")


@nox.session(python=NEWEST)
def pyright(session: nox.Session) -> None:
    """pyright on the typing test file: the public API as a second checker sees it."""
    _install(session, "typecheck", "tests")
    session.install("pyright>=1.1.400")
    session.run("pyright", "tests/typing")


@nox.session(python=NEWEST)
def docs(session: nox.Session) -> None:
    """Build the documentation (every warning an error), then check it in a real browser.

    The browser check (docs/check_rendering.py) needs Chromium: on CI it must be there
    (``.ci/run`` installs it); elsewhere it is skipped, saying so, when it is not.
    """
    _install(session, "docs")
    out = ROOT / "docs" / "_build"
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", str(out / "html"))
    browser = ["--require-browser"] if is_ci(os.environ) else []
    session.run("python", "docs/check_rendering.py", str(out / "html"), *browser, *session.posargs)


@nox.session(python=NEWEST)
def bench(session: nox.Session) -> None:
    """Benchmarks: mlboot against the raw SDK, side by side, as ratios (not run by default)."""
    _install(session, "tests", "integration")
    session.install("-e", ".[v2]")  # the v2 benchmarks (7.-9.) against azure-ai-ml
    # Byte-compile mlboot and every installed package, as installing from a wheel does: an
    # editable install (and PYTHONDONTWRITEBYTECODE) would otherwise make every fresh interpreter
    # compile them again, on both sides of the ratios.
    session.run(
        "python",
        "-c",
        "import compileall, sysconfig; compileall.compile_dir(sysconfig.get_paths()['purelib'], "
        "quiet=1, workers=0); compileall.compile_dir('src', quiet=1)",
    )
    session.run("python", "benchmarks/run.py", *session.posargs)
