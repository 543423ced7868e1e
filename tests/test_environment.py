"""Environment: built from files, images or registered names, checked before anything remote."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from mlboot import Environment
from mlboot._environment import (
    DEFAULT_ENVIRONMENT_NAME,
    _parse_yaml,
    local_python_version,
    pip_logical_lines,
)
from mlboot.exceptions import InvalidInputError

LOCAL = f"{sys.version_info.major}.{sys.version_info.minor}"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_local_python_version_is_major_dot_minor() -> None:
    assert local_python_version() == LOCAL


# -- pip requirements ------------------------------------------------------------------------------


def test_a_pip_file_gives_its_requirements_and_the_local_python(tmp_path: Path) -> None:
    path = write(tmp_path, "requirements.txt", "numpy>=1.26\ntorch==2.3.1\n")

    environment = Environment.from_pip_requirements(path)

    assert environment.kind == "pip"
    assert environment.name == DEFAULT_ENVIRONMENT_NAME
    assert environment.python_version == LOCAL
    assert environment.pip_requirements == path
    assert environment.pip_packages == ("numpy>=1.26", "torch==2.3.1")
    assert environment.conda_specification is None
    assert environment.docker_image is None
    assert dict(environment.variables) == {}


def test_a_relative_pip_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "requirements.txt", "numpy\n")
    monkeypatch.chdir(tmp_path)

    environment = Environment.from_pip_requirements("requirements.txt")

    assert environment.pip_requirements == tmp_path / "requirements.txt"


def test_comments_blank_lines_options_hashes_and_continuations_are_understood(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "requirements.txt",
        "# training dependencies\n"
        "\n"
        "--extra-index-url https://download.pytorch.org/whl/cu121\n"
        "--index-url=https://pypi.org/simple\n"
        "--pre\n"
        "numpy>=1.26  # pinned below 2 elsewhere\n"
        "torch==2.3.1 \\\n"
        "    --hash=sha256:0123456789abcdef\n"
        'tomli>=2; python_version < "3.11"\n'
        "mypkg @ https://example.com/mypkg-1.0-py3-none-any.whl\n"
        "transformers[torch]~=4.41\n",
    )

    environment = Environment.from_pip_requirements(path)

    assert environment.pip_packages == (
        "numpy>=1.26",
        "torch==2.3.1",
        'tomli>=2; python_version < "3.11"',
        "mypkg @ https://example.com/mypkg-1.0-py3-none-any.whl",
        "transformers[torch]~=4.41",
    )


def test_an_empty_pip_file_is_an_environment_without_packages(tmp_path: Path) -> None:
    environment = Environment.from_pip_requirements(write(tmp_path, "r.txt", "# nothing\n"))

    assert environment.pip_packages == ()


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("numpy>=", "not a valid requirement"),
        ("-r other.txt", "another requirements file"),
        ("--requirement=other.txt", "another requirements file"),
        ("-c constraints.txt", "constraints file"),
        ("-e .", "editable"),
        ("./libs/mypkg", "local paths"),
        ("git+https://github.com/org/repo.git", "not a valid requirement"),
        ("mypkg @ file:///home/me/mypkg.whl", "local file"),
        ("--no-deps", "not a pip option"),
        ("--index-url", "not a pip option"),  # an option that needs a value, without one
        ("pip install numpy", "not a valid requirement"),
    ],
)
def test_bad_pip_lines_are_refused_with_their_line_number(
    tmp_path: Path, line: str, says: str
) -> None:
    path = write(tmp_path, "requirements.txt", f"numpy\n\n{line}\n")

    with pytest.raises(InvalidInputError) as caught:
        Environment.from_pip_requirements(path)

    assert caught.value.field == "pip_requirements"
    assert caught.value.value == str(path)
    assert "line 3" in caught.value.rule
    assert says in caught.value.rule


def test_a_missing_pip_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist") as caught:
        Environment.from_pip_requirements(tmp_path / "requirements.txt")

    assert caught.value.field == "pip_requirements"


def test_a_folder_is_not_a_pip_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not a file"):
        Environment.from_pip_requirements(tmp_path)


@pytest.mark.parametrize("path", [42, None, ""])
def test_a_pip_path_must_be_a_path(path: object) -> None:
    with pytest.raises(InvalidInputError) as caught:
        Environment.from_pip_requirements(path)  # type: ignore[arg-type]

    assert caught.value.field == "pip_requirements"


def test_an_undecodable_pip_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_bytes(b"numpy\n\xff\xfe\xfa\n")

    with pytest.raises(InvalidInputError, match="cannot be read as text"):
        Environment.from_pip_requirements(path)


@pytest.mark.parametrize("version", ["3.11", "3.8", "3.12.4", "3.13"])
def test_an_explicit_python_version_is_kept(tmp_path: Path, version: str) -> None:
    path = write(tmp_path, "requirements.txt", "numpy\n")

    assert Environment.from_pip_requirements(path, python_version=version).python_version == version


@pytest.mark.parametrize("version", ["2.7", "3.7", "3", "latest", "3.11.x", " 3.11", 3.11, "4.0"])
def test_bad_python_versions_are_refused(tmp_path: Path, version: object) -> None:
    path = write(tmp_path, "requirements.txt", "numpy\n")

    with pytest.raises(InvalidInputError) as caught:
        Environment.from_pip_requirements(path, python_version=version)  # type: ignore[arg-type]

    assert caught.value.field == "python_version"


# -- conda files -----------------------------------------------------------------------------------

CONDA = """\
name: train
channels:
  - conda-forge
dependencies:
  - python=3.10
  - numpy=1.26
  - conda-forge::pyarrow>=15
  - pip
  - pip:
    - torch==2.3.1  # CUDA 12.1 wheels
    - --extra-index-url https://download.pytorch.org/whl/cu121
"""


def test_a_conda_file_gives_its_packages_and_its_python_pin(tmp_path: Path) -> None:
    path = write(tmp_path, "environment.yml", CONDA)

    environment = Environment.from_conda_specification(path, name="train-env")

    assert environment.kind == "conda"
    assert environment.name == "train-env"
    assert environment.conda_specification == path
    assert environment.python_version == "3.10"
    assert environment.conda_packages == (
        "python=3.10",
        "numpy=1.26",
        "conda-forge::pyarrow>=15",
        "pip",
    )
    assert environment.pip_packages == ("torch==2.3.1",)


def test_a_conda_file_without_python_gets_the_local_version(tmp_path: Path) -> None:
    path = write(tmp_path, "environment.yml", "dependencies:\n  - numpy\n")

    assert Environment.from_conda_specification(path).python_version == LOCAL


def test_a_bare_python_entry_is_not_a_pin(tmp_path: Path) -> None:
    path = write(tmp_path, "environment.yml", "dependencies: [python, numpy]\n")

    environment = Environment.from_conda_specification(path, python_version="3.12")

    assert environment.python_version == "3.12"


def test_an_explicit_version_may_repeat_the_pin(tmp_path: Path) -> None:
    path = write(tmp_path, "environment.yml", CONDA)

    environment = Environment.from_conda_specification(path, python_version="3.10")

    assert environment.python_version == "3.10"


def test_an_explicit_version_may_not_contradict_the_pin(tmp_path: Path) -> None:
    path = write(tmp_path, "environment.yml", CONDA)

    with pytest.raises(InvalidInputError, match=r"pins python=3\.10") as caught:
        Environment.from_conda_specification(path, python_version="3.11")

    assert caught.value.field == "python_version"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("dependencies: [numpy\n", "not valid YAML"),
        ("a: 1\na: 2\n", "not valid YAML"),  # duplicate keys, as the SDK's reader says
        ("- numpy\n- scipy\n", "must be a YAML mapping"),
        ("", "must be a YAML mapping"),
        ("dependencies: [numpy]\nbuild: fast\n", "keys azureml-core refuses (build)"),
        ("dependencies: numpy\n", "'dependencies' must be a list"),
        ("channels: conda-forge\n", "'channels' must be a list"),
        ("dependencies:\n  - 42\n", "dependency 1 (42)"),
        ("dependencies:\n  - numpy\n  - {conda: [x]}\n", "dependency 2"),
        ("dependencies:\n  - pip install numpy\n", "neither a conda package spec"),
        ("dependencies:\n  - pip: numpy\n", "'pip:' entry must be a list"),
        ("dependencies:\n  - pip:\n    - numpy>=\n", "pip dependency 1"),
        ("dependencies:\n  - pip:\n    - numpy\n    - -e .\n", "pip dependency 2"),
        ("dependencies:\n  - python>=3.9\n", "not a plain pin"),
        ("dependencies:\n  - python 3.10\n", "not a plain pin"),
        ("dependencies:\n  - python=3.10.*\n", "not a plain pin"),
        ("dependencies:\n  - python=3.7\n", "older than the Python 3.8"),
        ("dependencies:\n  - python=3.10\n  - python=3.11\n", "names python more than once"),
    ],
)
def test_bad_conda_files_are_refused(tmp_path: Path, text: str, says: str) -> None:
    path = write(tmp_path, "environment.yml", text)

    with pytest.raises(InvalidInputError) as caught:
        Environment.from_conda_specification(path)

    assert caught.value.field == "conda_specification"
    assert says in caught.value.rule


@pytest.mark.parametrize(
    ("text", "logical"),
    [
        ("numpy>=1.\\\n26\n", [(1, "numpy>=1.26")]),  # joined with nothing between, as pip
        ("# a comment \\\nnumpy\n", [(2, "numpy")]),  # a comment line never goes on
        ("torch \\\n# why\nscipy\n", [(1, "torch"), (3, "scipy")]),
        ("numpy  # pinned \\\n  scipy\n", [(1, "numpy")]),  # the comment swallows the rest
        ("\n  \nlast \\", [(3, "last")]),
    ],
)
def test_requirement_lines_are_joined_and_stripped_as_pip_does(
    text: str, logical: list[tuple[int, str]]
) -> None:
    # One reader for the Environment's checks and the local backend's installed-package check.
    assert pip_logical_lines(text.splitlines()) == logical
    assert pip_logical_lines(text.splitlines(keepends=True)) == logical


YAML_AS_THE_SDK_READS_IT = [
    "name: train\nchannels: [conda-forge]\ndependencies:\n  - python=3.10\n  - pip:\n    - x\n",
    "dependencies: [yes, no, on, off, y, n]\n",  # YAML 1.2: names, not booleans
    # Numbers are refused as dependencies whichever YAML version reads them (010, 1:30 differ).
    "dependencies: [true, false, True, 1.5, 42, '3.10', python=3.10, null, ~]\n",
    "a: &anchor [1, 2]\nb: *anchor\n",
    "",
]


@pytest.mark.sdk
@pytest.mark.parametrize("text", YAML_AS_THE_SDK_READS_IT)
def test_conda_yaml_is_read_as_azureml_cores_own_reader_reads_it(text: str) -> None:
    # azureml-core reads conda files with the ruamel.yaml it vendors (round-trip, YAML 1.2);
    # mlboot reads them with PyYAML, which must give the same values.
    from azureml._vendor.ruamel.yaml import YAML  # noqa: PLC0415

    def plain(value: object) -> object:  # ruamel's round-trip types, as plain ones
        if isinstance(value, dict):
            return {plain(k): plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int | float | str):
            return type(value).__mro__[-2](value)  # int, float or str, whatever the subclass
        return value

    assert _parse_yaml(text) == plain(YAML(typ="rt").load(text))


def test_yaml_1_1_booleans_in_a_conda_file_stay_package_names(tmp_path: Path) -> None:
    path = write(tmp_path, "environment.yml", "dependencies: [python=3.10, on]\n")

    assert Environment.from_conda_specification(path).conda_packages == ("python=3.10", "on")


def test_a_conda_file_is_read_without_azureml_core(tmp_path: Path) -> None:
    path = write(tmp_path, "environment.yml", CONDA)
    code = (
        "import sys\n"
        "sys.modules['azureml'] = None  # as on an install without azureml-core\n"
        "import mlboot\n"
        f"env = mlboot.Environment.from_conda_specification({str(path)!r})\n"
        "print(env.python_version, sorted(m for m in sys.modules if m.startswith('azureml')))\n"
    )
    result = subprocess.run(  # noqa: S603  (our own interpreter, fixed code)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )

    assert result.stdout.split() == ["3.10", "['azureml']"]


def test_a_missing_conda_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist") as caught:
        Environment.from_conda_specification(tmp_path / "environment.yml")

    assert caught.value.field == "conda_specification"


def test_python_packages_named_like_python_are_not_pins(tmp_path: Path) -> None:
    path = write(tmp_path, "environment.yml", "dependencies: [python-dateutil, python=3.11]\n")

    environment = Environment.from_conda_specification(path)

    assert environment.python_version == "3.11"


def test_reading_a_conda_file_does_not_load_the_sdk(tmp_path: Path) -> None:
    path = write(tmp_path, "environment.yml", CONDA)
    code = (
        "import sys, mlboot\n"
        f"mlboot.Environment.from_conda_specification({str(path)!r})\n"
        "print(sorted(m for m in sys.modules if m.startswith('azureml.core') "
        "or m.split('.')[0] in {'msrest', 'requests'}))"
    )

    result = subprocess.run(  # noqa: S603  (our own interpreter, fixed code)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )

    assert result.stdout.strip() == "[]"


# -- Docker images ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        "ubuntu",
        "python:3.11-slim",
        "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest",
        "myregistry.azurecr.io/team/train:1.4",
        "localhost:5000/train",
        "nvcr.io/nvidia/pytorch:24.05-py3",
        "registry.example.com/img@sha256:" + "a" * 64,
    ],
)
def test_an_image_alone_runs_its_own_python(image: str) -> None:
    environment = Environment.from_docker_image(image)

    assert environment.kind == "docker"
    assert environment.docker_image == image
    assert environment.python_version is None
    assert environment.pip_requirements is None
    assert environment.conda_specification is None


@pytest.mark.parametrize(
    "image",
    ["", "Upper/Case", "has space:1", "img:tag with space", "img:", "/leading", "img::x", 42, None],
)
def test_bad_image_references_are_refused(image: object) -> None:
    with pytest.raises(InvalidInputError) as caught:
        Environment.from_docker_image(image)  # type: ignore[arg-type]

    assert caught.value.field == "image"


def test_an_image_alone_refuses_a_python_version() -> None:
    with pytest.raises(InvalidInputError, match="its own Python") as caught:
        Environment.from_docker_image("python:3.11", python_version="3.11")

    assert caught.value.field == "python_version"


def test_an_image_with_a_conda_file(tmp_path: Path) -> None:
    path = write(tmp_path, "environment.yml", CONDA)

    environment = Environment.from_docker_image(
        "nvcr.io/nvidia/pytorch:24.05-py3", conda_specification=path, variables={"A": "1"}
    )

    assert environment.kind == "docker"
    assert environment.docker_image == "nvcr.io/nvidia/pytorch:24.05-py3"
    assert environment.conda_specification == path
    assert environment.python_version == "3.10"
    assert environment.pip_packages == ("torch==2.3.1",)
    assert dict(environment.variables) == {"A": "1"}


def test_an_image_with_a_pip_file(tmp_path: Path) -> None:
    path = write(tmp_path, "requirements.txt", "numpy\n")

    environment = Environment.from_docker_image(
        "ubuntu:22.04", pip_requirements=path, python_version="3.12", name="img-env"
    )

    assert environment.kind == "docker"
    assert environment.name == "img-env"
    assert environment.pip_requirements == path
    assert environment.python_version == "3.12"


def test_an_image_takes_one_file_not_two(tmp_path: Path) -> None:
    pip = write(tmp_path, "requirements.txt", "numpy\n")
    conda = write(tmp_path, "environment.yml", CONDA)

    with pytest.raises(InvalidInputError, match="not both"):
        Environment.from_docker_image("ubuntu", conda_specification=conda, pip_requirements=pip)


# -- registered environments -----------------------------------------------------------------------


@pytest.mark.parametrize(("version", "kept"), [("3", "3"), (7, "7"), (None, None)])
def test_a_registered_environment_is_a_name_and_a_version(
    version: str | int | None, kept: str | None
) -> None:
    environment = Environment.from_registered("AzureML-pytorch-1.13-cuda11.7", version)

    assert environment.kind == "registered"
    assert environment.name == "AzureML-pytorch-1.13-cuda11.7"
    assert environment.version == kept
    assert environment.python_version is None


@pytest.mark.parametrize("name", ["", " spaced", "trailing ", 42, None])
def test_a_registered_name_must_be_a_plain_name(name: object) -> None:
    with pytest.raises(InvalidInputError) as caught:
        Environment.from_registered(name)  # type: ignore[arg-type]

    assert caught.value.field == "name"


@pytest.mark.parametrize("version", ["", " 3", True, 1.5, ["3"]])
def test_a_registered_version_must_be_a_str_or_int(version: object) -> None:
    with pytest.raises(InvalidInputError) as caught:
        Environment.from_registered("env", version)  # type: ignore[arg-type]

    assert caught.value.field == "version"


# -- names and variables ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "has space", "-dash-first", "ünï", "x" * 256, 5])
def test_bad_names_for_new_environments_are_refused(tmp_path: Path, name: object) -> None:
    path = write(tmp_path, "requirements.txt", "numpy\n")

    with pytest.raises(InvalidInputError) as caught:
        Environment.from_pip_requirements(path, name=name)  # type: ignore[arg-type]

    assert caught.value.field == "name"


def test_variables_are_kept(tmp_path: Path) -> None:
    path = write(tmp_path, "requirements.txt", "numpy\n")
    given = {"TOKENIZERS_PARALLELISM": "false", "_X1": ""}

    environment = Environment.from_pip_requirements(path, variables=given)
    given["LATER"] = "changed"

    assert dict(environment.variables) == {"TOKENIZERS_PARALLELISM": "false", "_X1": ""}


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"1ABC": "x"}, "variables"),
        ({"A-B": "x"}, "variables"),
        ({"": "x"}, "variables"),
        ({3: "x"}, "variables"),
        ({"A": 1}, "variables['A']"),
        ({"A": True}, "variables['A']"),
        ({"A": "nul\x00"}, "variables['A']"),
        (["A=1"], "variables"),
    ],
)
def test_bad_variables_are_refused(variables: object, field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        Environment.from_registered("env", variables=variables)  # type: ignore[arg-type]

    assert caught.value.field == field


def test_an_environment_is_frozen(tmp_path: Path) -> None:
    environment = Environment.from_registered("env", "1")

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        environment.name = "other"  # type: ignore[misc]


def test_environments_compare_by_value(tmp_path: Path) -> None:
    path = write(tmp_path, "requirements.txt", "numpy\n")

    assert Environment.from_pip_requirements(path) == Environment.from_pip_requirements(path)
    assert Environment.from_registered("env", "1") != Environment.from_registered("env", "2")
