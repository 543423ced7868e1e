"""What the README and the docs point at exists, and is public."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
PAGES = [p for p in PAGES if "_build" not in p.parts]
# The first folders of the repository's own files: a path that starts with one is a repo file.
REPO_FOLDERS = (
    ".ci/", ".devcontainer/", "benchmarks/", "docs/", "examples/", "src/mlboot/", "templates/",
    "tests/",
)  # fmt: skip
IN_BACKTICKS = re.compile(r"`([^`\s]+)`")
LINK_TARGET = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
INCLUDE = re.compile(r"```\{(?:literalinclude|include)\} (\S+)")
PRIVATE = re.compile(r"\bmlboot\._(?!_)\w*")


def repo_paths(page: Path) -> set[Path]:
    text = page.read_text(encoding="utf-8")
    found = {ROOT / token for token in IN_BACKTICKS.findall(text) if token.startswith(REPO_FOLDERS)}
    found |= {
        (page.parent / target).resolve()
        for target in LINK_TARGET.findall(text)
        if "://" not in target and not target.startswith("mailto:")
    }
    found |= {(page.parent / target).resolve() for target in INCLUDE.findall(text)}
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_repository_path_a_page_mentions_exists(page: Path) -> None:
    missing = sorted(str(p.relative_to(ROOT)) for p in repo_paths(page) if not p.exists())

    assert missing == [], f"{page.relative_to(ROOT)} mentions files that do not exist"


def test_the_readme_names_the_example_training_script_where_it_is() -> None:
    paths = repo_paths(ROOT / "README.md")

    assert ROOT / "examples/src/train.py" in paths


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_pages_name_no_private_module(page: Path) -> None:
    assert PRIVATE.findall(page.read_text(encoding="utf-8")) == []


def test_the_private_name_pattern_catches_private_modules_only() -> None:
    assert PRIVATE.findall("see mlboot._cli.ExitCode and mlboot.__version__") == ["mlboot._cli"]
