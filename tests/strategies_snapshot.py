"""Hypothesis strategies for snapshot trees: folders, files, ignore files, links.

Names are drawn from a small pool on purpose, so that generated patterns hit generated files
often; the pool holds dots, spaces, leading dots and glob characters.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs
from hypothesis import strategies as st

NAMES = (
    "a",
    "b",
    "data",
    "data.csv",
    "model.ckpt",
    "train.py",
    ".hidden",
    ".env",
    "with space.txt",
    "a.b.c",
    "out.log",
    "outputs",
    "keep",
    "#hash",
    "!bang",
    "[x]",
    "sp ",
    "ünï.txt",
)

# Segments for patterns: literal names, globs, and the gitwildmatch specials.
PATTERN_SEGMENTS = (
    "a",
    "b",
    "data",
    "data.csv",
    "outputs",
    "keep",
    "*",
    "**",
    "*.py",
    "*.log",
    "*.ckpt",
    ".*",
    "d?ta",
    "[ab]",
    "[!a]*",
    "*.b*",
    "\\#hash",
    "\\!bang",
    "\\[x]",
    "sp\\ ",
    ".git",
    ".hidden",
)


@st.composite
def patterns(draw: st.DrawFn) -> str:
    """One line of an ignore file: a pattern (maybe negated, anchored, folder-only) or noise."""
    kind = draw(st.sampled_from(("pattern",) * 8 + ("comment", "blank")))
    if kind == "comment":
        return "# " + draw(st.sampled_from(NAMES))
    if kind == "blank":
        return ""
    # Mostly one segment, so that generated patterns often hit generated files.
    count = draw(st.sampled_from((1, 1, 1, 2, 3)))
    body = "/".join(draw(st.sampled_from(PATTERN_SEGMENTS)) for _ in range(count))
    if draw(st.integers(0, 2)) == 0:
        body = "/" + body
    if draw(st.integers(0, 2)) == 0:
        body += "/"
    if draw(st.integers(0, 3)) == 0:
        body = "!" + body
    return body


ignore_files = st.lists(patterns(), max_size=6).map(lambda lines: "\n".join(lines) + "\n")


@attrs.frozen
class Tree:
    """A folder to build: files (path -> size), empty folders, ignore files and links."""

    files: dict[str, int]
    empty_folders: tuple[str, ...]
    amlignore: str | None
    gitignore: str | None
    nested_gitignore: str | None  # a .gitignore inside the first sub-folder, if any
    links: tuple[tuple[str, str], ...]  # (link path, target path), both relative

    def build(self, root: Path) -> None:
        for rel, size in self.files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x" * size)
        for rel in self.empty_folders:
            (root / rel).mkdir(parents=True, exist_ok=True)
        if self.amlignore is not None:
            (root / ".amlignore").write_text(self.amlignore, encoding="utf-8")
        if self.gitignore is not None:
            (root / ".gitignore").write_text(self.gitignore, encoding="utf-8")
        folders = sorted({rel.split("/")[0] for rel in self.files if "/" in rel})
        if self.nested_gitignore is not None and folders:
            (root / folders[0] / ".gitignore").write_text(self.nested_gitignore, encoding="utf-8")
        for link, target in self.links:
            link_path = root / link
            link_path.parent.mkdir(parents=True, exist_ok=True)
            link_path.symlink_to(os.path.relpath(root / target, link_path.parent))


def _no_file_folder_clash(paths: list[str]) -> bool:
    as_files = set(paths)
    return not any(
        "/".join(path.split("/")[:depth]) in as_files
        for path in paths
        for depth in range(1, path.count("/") + 1)
    )


relative_paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map("/".join)


@st.composite
def trees(draw: st.DrawFn, *, with_links: bool = True) -> Tree:
    """Small trees with nested folders, hidden files, sometimes a .git/ folder and links."""
    paths: list[str] = []
    for path in draw(st.lists(relative_paths, min_size=1, max_size=12, unique=True)):
        if _no_file_folder_clash([*paths, path]):
            paths.append(path)
    if draw(st.booleans()):
        paths += [".git/HEAD", ".git/objects/ab/cdef", ".git/config"]
    # Drop what would clash with a folder created above, and the ignore files themselves.
    paths = [p for p in paths if p not in {".amlignore", ".gitignore"}]
    if not _no_file_folder_clash(paths):
        paths = [p for p in paths if not p.startswith(".git/")]
    files = {path: draw(st.integers(0, 40)) for path in paths}
    folders = {"/".join(p.split("/")[:d]) for p in paths for d in range(1, p.count("/") + 1)}
    empty = draw(st.lists(st.sampled_from(NAMES), max_size=2, unique=True))
    empty_folders = tuple(f"{name}-empty/inner" for name in empty)

    links: list[tuple[str, str]] = []
    if with_links and draw(st.booleans()):
        if draw(st.booleans()):
            links.append(("link-to-file", draw(st.sampled_from(sorted(files)))))
        # A link to a folder must not sit inside that folder, or the SDK walks in circles.
        if folders:
            target = draw(st.sampled_from(sorted(folders)))
            links.append((f"link-to-{target.replace('/', '-')}", target))

    def maybe_ignore_file() -> str | None:
        return draw(ignore_files) if draw(st.integers(0, 2)) else None

    return Tree(
        files=files,
        empty_folders=empty_folders,
        amlignore=maybe_ignore_file(),
        gitignore=maybe_ignore_file(),
        nested_gitignore=maybe_ignore_file(),
        links=tuple(links),
    )
