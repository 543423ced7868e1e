"""Developer tasks: `nox` runs the default sessions; `nox -l` lists them all."""

from __future__ import annotations

from pathlib import Path

import nox

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "pyright", "tests", "integration", "docs"]
nox.options.error_on_missing_interpreters = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = nox.project.python_versions(PYPROJECT)  # every version the classifiers promise
ROOT = Path(__file__).parent


def _install(session: nox.Session, *groups: str) -> None:
    requirements = [r for g in groups for r in nox.project.dependency_groups(PYPROJECT, g)]
    session.install("-e", ".", *requirements)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Unit, contract and documentation-example tests (no network beyond loopback)."""
    _install(session, "tests")
    session.run("pytest", "--ignore=tests/integration", "-p", "no:cacheprovider", *session.posargs)


@nox.session(python=PYTHONS[-1])
def integration(session: nox.Session) -> None:
    """The real SDK end to end against the Azure ML emulator on 127.0.0.1."""
    _install(session, "tests", "integration")
    session.run("pytest", "tests/integration", "-p", "no:cacheprovider", *session.posargs)


@nox.session(python=PYTHONS[0])
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over everything."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHONS)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package and on the never-executed typing test file."""
    _install(session, "typecheck", "tests")
    session.run("mypy", "src", "tests/typing", f"--python-version={session.python}")


@nox.session(python=PYTHONS[-1])
def pyright(session: nox.Session) -> None:
    """pyright on the typing test file: the public API as a second checker sees it."""
    _install(session, "typecheck", "tests")
    session.install("pyright>=1.1.400")
    session.run("pyright", "tests/typing")


@nox.session(python=PYTHONS[-1])
def docs(session: nox.Session) -> None:
    """Build the documentation with Sphinx; every warning is an error."""
    _install(session, "docs")
    out = ROOT / "docs" / "_build"
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", str(out / "html"))


@nox.session(python=PYTHONS[-1])
def bench(session: nox.Session) -> None:
    """Benchmarks: mlboot against the raw SDK, side by side, as ratios (not run by default)."""
    _install(session, "tests", "integration")
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
