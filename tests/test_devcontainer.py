"""The dev containers, checked without Docker: mlboot's own and the template for training repos.

No Docker engine runs here, so these tests read the files as the dev container tools would and
hold them to the versions mlboot documents: the JSON-with-comments parses into known
properties, every referenced file exists, the images and features are pinned, the Python of the
image is one mlboot supports, and the pinned tools satisfy pyproject.toml.  The post-create
scripts run for real, against stand-ins for ``uv`` and ``python``.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest itself depends on tomli before 3.11
    import tomli as tomllib

ROOT = Path(__file__).parent.parent
MLBOOT = ROOT / ".devcontainer"
TEMPLATE = ROOT / "templates" / "devcontainer"
DOCS_PAGE = ROOT / "docs" / "howto" / "devcontainer.md"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

both = pytest.mark.parametrize("folder", [MLBOOT, TEMPLATE], ids=["mlboot", "template"])

BASE_IMAGE = "mcr.microsoft.com/devcontainers/python"
# <image major version>-<Python>-<Debian release>, e.g. 3-3.12-bookworm.
BASE_TAG = re.compile(r"(?P<major>\d+)-(?P<python>3\.\d+)-(?P<debian>bookworm|trixie)\Z")
EXTENSIONS = {"ms-python.python", "ms-toolsai.vscode-ai", "charliermarsh.ruff"}

# The top-level properties of devcontainer.json (containers.dev/implementors/json_reference):
# anything else is a typo that the tools would silently ignore.
PROPERTIES = {
    "name", "image", "build", "dockerFile", "context", "dockerComposeFile", "service",
    "runServices", "workspaceFolder", "workspaceMount", "features",
    "overrideFeatureInstallOrder", "forwardPorts", "portsAttributes", "otherPortsAttributes",
    "appPort", "containerEnv", "remoteEnv", "containerUser", "remoteUser",
    "updateRemoteUserUID", "userEnvProbe", "overrideCommand", "shutdownAction", "init",
    "privileged", "capAdd", "securityOpt", "mounts", "runArgs", "initializeCommand",
    "onCreateCommand", "updateContentCommand", "postCreateCommand", "postStartCommand",
    "postAttachCommand", "waitFor", "customizations", "hostRequirements",
}  # fmt: skip


# -- reading the files ------------------------------------------------------------------------


def strip_jsonc(text: str) -> str:
    """JSON with comments (as devcontainer.json allows) to plain JSON.

    Drops ``//`` and ``/* */`` comments and trailing commas, and leaves strings alone: a URL's
    ``//`` or a ``,}`` inside a string is text, not syntax.  Newlines are kept, so a JSON error
    still names the right line.
    """
    return _drop_trailing_commas(_drop_comments(text))


def _drop_comments(text: str) -> str:
    kept: list[str] = []
    i, in_string = 0, False
    while i < len(text):
        char = text[i]
        if in_string:
            step = 2 if char == "\\" else 1  # an escaped character never ends the string
            kept.append(text[i : i + step])
            in_string = char != '"'
            i += step
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = len(text) if end == -1 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end == -1:
                raise ValueError(f"unterminated /* comment at offset {i}")
            kept.append("\n" * text.count("\n", i, end))
            i = end + 2
        else:
            in_string = char == '"'
            kept.append(char)
            i += 1
    return "".join(kept)


def _drop_trailing_commas(text: str) -> str:
    kept: list[str] = []
    in_string = escaped = False
    for i, char in enumerate(text):
        if in_string:
            in_string = escaped or char != '"'
            escaped = not escaped and char == "\\"
        elif char == '"':
            in_string = True
        elif char == "," and text[i + 1 :].lstrip()[:1] in {"}", "]"}:
            continue
        kept.append(char)
    return "".join(kept)


def load_jsonc(path: Path) -> dict[str, Any]:
    data = json.loads(strip_jsonc(path.read_text(encoding="utf-8")))
    assert isinstance(data, dict)
    return data


def devcontainer(folder: Path) -> dict[str, Any]:
    return load_jsonc(folder / "devcontainer.json")


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        found.append((keyword.upper(), " ".join(arguments.split())))
        pending = ""
    assert not pending, f"{dockerfile} ends inside a continued line"
    return found


def dockerfile_of(folder: Path) -> Path:
    return folder / devcontainer(folder)["build"]["dockerfile"]


def args(dockerfile: Path) -> dict[str, str]:
    """``ARG NAME=default`` lines, defaults unquoted."""
    defaults: dict[str, str] = {}
    for keyword, arguments in instructions(dockerfile):
        if keyword == "ARG":
            name, _, default = shlex.split(arguments)[0].partition("=")
            defaults[name] = default
    return defaults


def env(dockerfile: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for keyword, arguments in instructions(dockerfile):
        if keyword == "ENV":
            for pair in shlex.split(arguments):
                name, _, value = pair.partition("=")
                values[name] = value
    return values


def run_text(dockerfile: Path) -> str:
    return "\n".join(a for k, a in instructions(dockerfile) if k == "RUN")


def base_tag(dockerfile: Path) -> re.Match[str]:
    (image,) = [a.split()[0] for k, a in instructions(dockerfile) if k == "FROM"]
    name, _, tag = image.partition(":")
    assert name == BASE_IMAGE, image
    match = BASE_TAG.match(tag)
    assert match, f"{image}: the tag must pin <image major>-<Python>-<Debian>"
    return match


def supported_pythons() -> set[str]:
    prefix = "Programming Language :: Python :: "
    return {
        c.removeprefix(prefix)
        for c in PYPROJECT["project"]["classifiers"]
        if re.fullmatch(r"3\.\d+", c.removeprefix(prefix))
    }


def requirement(requirements: list[str], name: str) -> Requirement:
    (found,) = [Requirement(r) for r in requirements if Requirement(r).name == name]
    return found


def post_create_script(folder: Path) -> Path:
    command = devcontainer(folder)["postCreateCommand"]
    assert isinstance(command, str)
    shell, script = shlex.split(command)
    assert shell == "bash"
    # The command runs in the repository folder, where this folder is `.devcontainer/`.
    assert script.startswith(".devcontainer/"), script
    return folder / script.removeprefix(".devcontainer/")


def run_post_create(folder: Path, workdir: Path) -> list[list[str]]:
    """Run the post-create script in ``workdir``; return the ``uv`` commands it ran."""
    bin_dir = workdir.parent / "stand-ins"
    bin_dir.mkdir()
    log = workdir.parent / "uv.log"
    (bin_dir / "uv").write_text(f'#!/bin/sh\necho "$@" >> "{log}"\n', encoding="utf-8")
    (bin_dir / "python").write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    for stand_in in bin_dir.iterdir():
        stand_in.chmod(0o755)
    bash = shutil.which("bash")
    assert bash is not None
    subprocess.run(  # noqa: S603  (our own script, run by bash, with stand-ins on PATH)
        [bash, str(post_create_script(folder))],
        cwd=workdir,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
        check=True,
        capture_output=True,
        timeout=60,
    )
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return [line.split() for line in lines]


# -- the JSON-with-comments reader ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"url": "https://containers.dev" // a comment\n}', {"url": "https://containers.dev"}),
        ('{"a": "say \\"//hi\\"", /* block */ "b": [1, 2,],}', {"a": 'say "//hi"', "b": [1, 2]}),
        ('{"a": ",}", "b": ",]",\n}', {"a": ",}", "b": ",]"}),
        ('{"path": "C:\\\\", // the backslash ends the string\n "b": 1}', {"path": "C:\\", "b": 1}),
        ('{"a": /* one\ntwo */ 1 /**/}', {"a": 1}),
    ],
    ids=["url", "escaped-quote", "commas-in-strings", "trailing-backslash", "multiline-block"],
)
def test_strip_jsonc_drops_comments_and_trailing_commas_but_not_strings(
    text: str, expected: object
) -> None:
    assert json.loads(strip_jsonc(text)) == expected


def test_strip_jsonc_leaves_real_errors_to_json() -> None:
    with pytest.raises(json.JSONDecodeError) as caught:
        json.loads(strip_jsonc('{\n  // fine\n  "a": 1 "b": 2\n}'))
    assert caught.value.lineno == 3
    with pytest.raises(ValueError, match="unterminated"):
        strip_jsonc('{"a": 1 /* never closed }')


# -- both dev containers ----------------------------------------------------------------------


@both
def test_devcontainer_json_parses_into_known_properties(folder: Path) -> None:
    config = devcontainer(folder)

    assert set(config) <= PROPERTIES, set(config) - PROPERTIES
    assert config["name"]
    assert "//" in (folder / "devcontainer.json").read_text(encoding="utf-8")  # it has comments


@both
def test_the_build_references_files_that_exist(folder: Path) -> None:
    context = folder / devcontainer(folder)["build"].get("context", ".")

    assert dockerfile_of(folder).is_file()
    assert context.is_dir()
    for keyword, arguments in instructions(dockerfile_of(folder)):
        if keyword in {"COPY", "ADD"} and not arguments.startswith("--from="):
            for source in shlex.split(arguments)[:-1]:
                assert (context / source).exists(), f"{keyword} {source}: not in {context}"


@both
def test_the_base_image_is_pinned_to_a_supported_python(folder: Path) -> None:
    tag = base_tag(dockerfile_of(folder))

    assert tag["python"] in supported_pythons()
    assert SpecifierSet(PYPROJECT["project"]["requires-python"]).contains(f"{tag['python']}.0")


@both
def test_features_pin_a_major_version_and_bring_the_azure_cli(folder: Path) -> None:
    features = devcontainer(folder)["features"]

    for feature in features:
        assert re.fullmatch(r"ghcr\.io/devcontainers/features/[a-z0-9-]+:\d+(\.\d+){0,2}", feature)
    assert "ghcr.io/devcontainers/features/azure-cli:1" in features


@both
def test_the_virtual_environment_uses_the_image_python_and_comes_first(folder: Path) -> None:
    dockerfile = dockerfile_of(folder)
    venv = env(dockerfile)["VIRTUAL_ENV"]
    config = devcontainer(folder)
    vscode = config["customizations"]["vscode"]

    interpreter = re.search(
        r"uv venv --python /usr/local/bin/python3(\.\d+)? ", run_text(dockerfile)
    )
    assert interpreter, "the venv must be made from the base image's own Python"
    assert interpreter[1] in {None, "." + base_tag(dockerfile)["python"].split(".")[1]}
    assert env(dockerfile)["PATH"].startswith(f"{venv}/bin:")
    assert config["remoteEnv"] == {"PATH": f"{venv}/bin:${{containerEnv:PATH}}"}
    assert vscode["settings"]["python.defaultInterpreterPath"] == f"{venv}/bin/python"
    assert set(vscode["extensions"]) >= EXTENSIONS


@both
def test_uv_comes_from_its_official_image_at_one_fixed_version(folder: Path) -> None:
    def uv_image(dockerfile: Path) -> str:
        (source,) = [
            a.split()[0].removeprefix("--from=")
            for k, a in instructions(dockerfile)
            if k == "COPY" and a.startswith("--from=ghcr.io/astral-sh/uv")
        ]
        return source

    assert re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", uv_image(dockerfile_of(folder)))
    assert uv_image(dockerfile_of(folder)) == uv_image(dockerfile_of(MLBOOT))


@both
def test_every_build_argument_is_used(folder: Path) -> None:
    dockerfile = dockerfile_of(folder)

    for name in args(dockerfile):
        assert f"${{{name}}}" in run_text(dockerfile), f"ARG {name} is never used"


@both
def test_the_azure_login_persists_in_a_volume_owned_by_the_remote_user(folder: Path) -> None:
    config = devcontainer(folder)
    user = config["remoteUser"]
    fields = [dict(part.split("=", 1) for part in mount.split(",")) for mount in config["mounts"]]

    (azure,) = [f for f in fields if f["target"] == f"/home/{user}/.azure"]
    assert azure["type"] == "volume"
    assert "${devcontainerId}" in azure["source"]
    assert not [f for f in fields if "localEnv" in f["source"]], "no host folder is mounted"
    assert f"install -d -o {user} -g {user} /home/{user}/.azure" in run_text(dockerfile_of(folder))


@both
def test_the_post_create_script_exists_and_is_valid_bash(folder: Path) -> None:
    script = post_create_script(folder)
    bash = shutil.which("bash")
    assert bash is not None

    text = script.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    subprocess.run([bash, "-n", str(script)], check=True, timeout=30)  # noqa: S603  (syntax only)


# -- mlboot's own dev container -----------------------------------------------------------------


def test_the_image_tools_satisfy_mlboots_own_requirements() -> None:
    pins = args(dockerfile_of(MLBOOT))
    groups = PYPROJECT["dependency-groups"]
    noxfile = (ROOT / "noxfile.py").read_text(encoding="utf-8")
    (nox_needs,) = re.findall(r'nox\.needs_version = "(.+)"', noxfile)

    for needed, pinned in [
        (requirement(PYPROJECT["project"]["dependencies"], "azureml-core"), "AZUREML_CORE"),
        (requirement(groups["lint"], "ruff"), "RUFF"),
        (requirement(groups["typecheck"], "mypy"), "MYPY"),
        (Requirement(f"nox{nox_needs}"), "NOX"),
    ]:
        version = pins[f"{pinned}_VERSION"]
        assert needed.specifier.contains(version), f"{needed} rejects the image's {version}"
        assert f'"{needed.name}==${{{pinned}_VERSION}}"' in run_text(dockerfile_of(MLBOOT))


def test_the_image_has_every_supported_python_for_nox() -> None:
    dockerfile = dockerfile_of(MLBOOT)
    extra = set(args(dockerfile)["EXTRA_PYTHONS"].split())

    assert extra | {base_tag(dockerfile)["python"]} == supported_pythons()
    assert base_tag(dockerfile)["python"] not in extra
    assert "uv python install ${EXTRA_PYTHONS}" in run_text(dockerfile)


def test_post_create_installs_mlboot_editable_with_every_dependency_group(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "mlboot"
    workdir.mkdir()

    (install,) = run_post_create(MLBOOT, workdir)

    assert install[:4] == ["pip", "install", "--editable", "."]
    groups = [install[i + 1] for i, word in enumerate(install) if word == "--group"]
    assert sorted(groups) == sorted(PYPROJECT["dependency-groups"])


# -- the template for training repositories -----------------------------------------------------


def test_the_template_requirements_admit_this_mlboot_and_its_azureml_core() -> None:
    pins = args(dockerfile_of(TEMPLATE))
    release = Version(Version(PYPROJECT["project"]["version"]).base_version)
    ours = requirement(PYPROJECT["project"]["dependencies"], "azureml-core")

    mlboot = Requirement(pins["MLBOOT_REQUIREMENT"])
    azureml_core = Requirement(pins["AZUREML_CORE_REQUIREMENT"])

    assert mlboot.name == "mlboot"
    assert mlboot.specifier.contains(release), f"{mlboot} rejects mlboot {release}"
    assert (azureml_core.name, azureml_core.specifier) == (ours.name, ours.specifier)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ((), []),
        (("requirements.txt",), [["pip", "install", "--requirement", "requirements.txt"]]),
        (
            ("requirements.txt", "pyproject.toml"),
            [
                ["pip", "install", "--requirement", "requirements.txt"],
                ["pip", "install", "--editable", "."],
            ],
        ),
        (("pyproject.toml",), [["pip", "install", "--editable", "."]]),
    ],
    ids=["nothing", "requirements", "both", "pyproject"],
)
def test_the_template_post_create_installs_what_the_repository_has(
    tmp_path: Path, files: tuple[str, ...], expected: list[list[str]]
) -> None:
    repository = tmp_path / "training-repo"
    repository.mkdir()
    for name in files:
        (repository / name).write_text("", encoding="utf-8")

    assert run_post_create(TEMPLATE, repository) == expected


def test_the_docs_show_every_template_file() -> None:
    page = DOCS_PAGE.read_text(encoding="utf-8")
    included = {
        (DOCS_PAGE.parent / path).resolve()
        for path in re.findall(r"```\{literalinclude\} (\S+)", page)
    }

    assert included, "the page includes the files, so it cannot drift from them"
    assert all(path.is_file() for path in included), included
    shown = {path for path in TEMPLATE.iterdir() if path.name != "README.md"}
    assert shown <= included
