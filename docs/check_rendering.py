"""Check the built HTML documentation in a real browser: no code block is clipped.

    python docs/check_rendering.py docs/_build/html [--screenshots DIR] [--require-browser]

Every page is opened in headless Chromium at 1280 px wide (a laptop screen), and a small script
in the page asks the browser, for every ``pre`` element, whether its text is wider than the box
that shows it (``scrollWidth > clientWidth``): such a block hides part of its lines behind a
scroll bar.  The check fails listing each clipped block by page and first line, and also fails
when a page is wider than the window or when the script did not report back.

With ``--screenshots DIR`` it also saves a PNG of the top of every page, to look at.

Without Chromium on the PATH the check is skipped, saying so, unless ``--require-browser`` is
given (nox's docs session gives it on CI, where ``.ci/run`` installs Debian's ``chromium``).
"""

# ruff: noqa: T201, S603  (a command-line check: it prints for its reader and runs the browser)

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WIDTH = 1280
HEIGHT = 1600
# Sphinx's generated pages hold no prose or examples of ours.
GENERATED = {"genindex.html", "search.html", "py-modindex.html"}
MARKER = "mlboot-rendering-check"

# Runs once the page, its style sheets and its fonts have loaded; leaves its verdict in the DOM,
# which --dump-dom prints.
PROBE = """
<script>
window.addEventListener("load", async () => {
  await document.fonts.ready;
  const clipped = [];
  for (const pre of document.querySelectorAll("pre")) {
    if (pre.offsetParent !== null && pre.scrollWidth > pre.clientWidth + 1) {
      clipped.push({
        first_line: pre.textContent.trim().split("\\n")[0].slice(0, 100),
        text_width: pre.scrollWidth,
        shown_width: pre.clientWidth,
      });
    }
  }
  const root = document.documentElement;
  const verdict = {
    blocks: document.querySelectorAll("pre").length,
    clipped: clipped,
    page_width: root.scrollWidth,
    window_width: root.clientWidth,
  };
  const out = document.createElement("div");
  out.id = "MARKER";
  out.setAttribute("data-verdict", JSON.stringify(verdict));
  document.body.appendChild(out);
});
</script>
""".replace("MARKER", MARKER)
VERDICT = re.compile(rf'<div id="{MARKER}" data-verdict="([^"]*)"')


def find_browser() -> str | None:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def pages(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*.html")
        if p.name not in GENERATED and not p.relative_to(root).parts[0].startswith("_")
    )


def browser_command(browser: str, profile: Path, *arguments: str) -> list[str]:
    return [
        browser,
        "--headless",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
        "--run-all-compositor-stages-before-draw",
        "--virtual-time-budget=10000",
        *arguments,
    ]


def check_page(browser: str, page: Path, work: Path) -> tuple[dict[str, Any] | None, str]:
    """The page's verdict, or None and what the browser said when it gave none."""
    with tempfile.TemporaryDirectory(dir=work) as profile:
        done = subprocess.run(
            browser_command(browser, Path(profile), "--dump-dom", page.as_uri()),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    found = VERDICT.search(done.stdout)
    if found is None:
        return None, done.stderr[-2000:]
    verdict: dict[str, Any] = json.loads(html.unescape(found[1]))
    return verdict, ""


def screenshot(browser: str, page: Path, png: Path, work: Path) -> None:
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work) as profile:
        subprocess.run(
            browser_command(browser, Path(profile), f"--screenshot={png}", page.as_uri()),
            capture_output=True,
            timeout=120,
            check=True,
        )


def problems_of(name: str, verdict: dict[str, Any]) -> list[str]:
    found: list[str] = []
    clipped: list[dict[str, Any]] = verdict["clipped"]
    found.extend(
        f"{name}: a code block is clipped ({block['text_width']} px of text in a"
        f" {block['shown_width']} px box): {block['first_line']!r}"
        for block in clipped
    )
    if verdict["page_width"] != verdict["window_width"]:
        found.append(
            f"{name}: the page is {verdict['page_width']} px wide, wider than the"
            f" {verdict['window_width']} px window"
        )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", type=Path, help="the folder sphinx-build -b html wrote")
    parser.add_argument("--screenshots", type=Path, help="save a PNG of every page here")
    parser.add_argument(
        "--require-browser", action="store_true", help="fail, not skip, without Chromium"
    )
    args = parser.parse_args(argv)

    browser = find_browser()
    if browser is None:
        names = ", ".join(BROWSERS)
        if args.require_browser:
            print(f"check_rendering: FAILED: no browser on the PATH (looked for {names}).")
            print("Install one, e.g. as root: apt-get install -y chromium")
            return 1
        print(f"check_rendering: SKIPPED: no browser on the PATH (looked for {names}).")
        print("The code blocks were not checked for clipping; apt-get install chromium to do so.")
        return 0

    with tempfile.TemporaryDirectory(prefix="mlboot-docs-check-") as tmp:
        work = Path(tmp)
        probed = work / "html"
        shutil.copytree(args.html, probed)
        originals = pages(probed)
        if not originals:
            print(f"check_rendering: FAILED: no HTML pages in {args.html}")
            return 1
        for page in originals:
            text = page.read_text(encoding="utf-8")
            page.write_text(text.replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
        with ThreadPoolExecutor(max_workers=4) as pool:
            verdicts = list(pool.map(lambda p: check_page(browser, p, work), originals))
            if args.screenshots:
                shots = [
                    pool.submit(
                        screenshot,
                        browser,
                        args.html.resolve() / p.relative_to(probed),
                        args.screenshots / p.relative_to(probed).with_suffix(".png"),
                        work,
                    )
                    for p in originals
                ]
                for shot in shots:
                    shot.result()

    problems: list[str] = []
    blocks = 0
    for page, (verdict, said) in zip(originals, verdicts, strict=True):
        name = page.relative_to(probed).as_posix()
        if verdict is None:
            problems.append(f"{name}: the browser gave no verdict; it said:\n{said}")
            continue
        blocks += int(verdict["blocks"])
        problems.extend(problems_of(name, verdict))

    for problem in problems:
        print(problem)
    outcome = "FAILED" if problems else "passed"
    print(
        f"check_rendering: {outcome}: {len(originals)} pages, {blocks} code blocks,"
        f" {WIDTH} px wide, in {Path(browser).name}"
        + (f"; screenshots in {args.screenshots}" if args.screenshots else "")
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
