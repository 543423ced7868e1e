"""The software a run executes in: :class:`Environment`.

Build one with a class method: from a pip requirements file, a conda environment file, a Docker
image (optionally with either file), or a registered (or curated) Azure ML environment.  Every
file is read and checked when the value is built, long before anything remote: a typo in a
requirement fails here with its line number, not twenty minutes into an image build.

The Python version is always explicit.  azureml-core silently pins one when a file names none
(``python=3.8.13`` for a pip file, ``3.10.18`` for a conda file in azureml-core 1.61); mlboot
takes the version you pass, else the one the conda file pins, else the version of the
interpreter running mlboot (major and minor: conda picks the newest patch release).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal, TypeAlias

import attrs

from mlboot._auth import Secret, Undisclosed, looks_secret
from mlboot._spellings import name_pattern
from mlboot._validate import absolute_path, path_text, probe
from mlboot.exceptions import InvalidInputError

__all__ = [
    "DEFAULT_ENVIRONMENT_NAME",
    "Environment",
    "EnvironmentKind",
    "local_python_version",
    "validate_environment",
]

EnvironmentKind: TypeAlias = Literal["pip", "conda", "docker", "registered"]
"""Where an :class:`Environment` comes from."""

DEFAULT_ENVIRONMENT_NAME = "mlboot-environment"
"""The name given to an environment built from files when no ``name`` is passed."""

_MIN_PYTHON_MINOR = 8  # the base conda file of azureml-core: "Azure ML only supports 3.8 and later"
_PYTHON_VERSION = re.compile(r"3\.(\d{1,2})(?:\.\d{1,3})?", re.ASCII)
_PYTHON_VERSION_RULE = (
    "it must be a Python 3 version, major.minor or major.minor.patch, 3.8 or later "
    "(e.g. '3.11' or '3.11.9')"
)

# Names of environments mlboot builds; a registered environment keeps whatever name it has.
_NEW_NAME = re.compile(name_pattern(255), re.ASCII)
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)

# The image reference grammar of the Docker distribution project (reference/regexp.go):
# [registry[:port]/]path[:tag][@digest], path components lower case.
_DOMAIN_PART = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_DOMAIN = rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_IMAGE = re.compile(
    rf"(?:{_DOMAIN}/)?{_PATH_PART}(?:/{_PATH_PART})*(?::{_TAG})?(?:@{_DIGEST})?", re.ASCII
)

# pip options a requirements file may carry that still work where Azure ML builds the image.
_PIP_VALUE_OPTIONS = frozenset(
    {"--index-url", "-i", "--extra-index-url", "--find-links", "-f", "--trusted-host"}
    | {"--no-binary", "--only-binary"}
)
_PIP_FLAG_OPTIONS = frozenset({"--pre", "--prefer-binary"})
_PIP_REFUSED_OPTIONS = {
    "-r": "it names another requirements file, which is not sent to Azure ML",
    "--requirement": "it names another requirements file, which is not sent to Azure ML",
    "-c": "it names a constraints file, which is not sent to Azure ML",
    "--constraint": "it names a constraints file, which is not sent to Azure ML",
    "-e": "editable installs need a local checkout, which the image build does not have",
    "--editable": "editable installs need a local checkout, which the image build does not have",
}
_PIP_OPTION = re.compile(r"(-{1,2}[A-Za-z][A-Za-z-]*)(?:[=\s]\s*(.*))?", re.ASCII)
_PIP_COMMENT = re.compile(r"(?:^|\s)#.*$")
_PIP_COMMENT_LINE = re.compile(r"\s*#")  # a whole-line comment, which never goes on
_PIP_HASH_OPTION = re.compile(r"\s--hash[=\s]\S+")

# azureml-core's CondaDependencies._VALID_YML_KEYS: any other top-level key fails the submit.
_CONDA_KEYS = ("name", "channels", "dependencies", "prefix", "variables")
# A conda match spec: [channel::]name, then an optional [key=value] bracket, then a version
# written after an operator ("numpy>=1.26", "numpy=1.26=py311_0") or after a space, starting
# with a digit or '*' ("numpy 1.26.*"), optionally followed by a build string.
_CONDA_SPEC = re.compile(
    r"(?:[^\s:]+::)?([A-Za-z0-9_][A-Za-z0-9_.+-]*)(?:\[[^\]]*\])?"
    r"(?:\s*[=<>!~]\S*(?:\s+\S+)?|\s+[\d*]\S*(?:\s+\S+)?)?",
    re.ASCII,
)
_CONDA_PYTHON_PIN = re.compile(r"python(?:==?)(3\.\d{1,2}(?:\.\d{1,3})?)", re.ASCII)


def local_python_version() -> str:
    """The major.minor version of the interpreter running mlboot, e.g. ``"3.11"``."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


@attrs.frozen
class Environment:
    """The software a run executes in.  Build one with a class method, not directly.

    ``kind`` says where it comes from (``"pip"``, ``"conda"``, ``"docker"`` or
    ``"registered"``).  ``python_version`` is the Python the run gets, or ``None`` where the
    image or the registered environment decides.  ``pip_packages`` and ``conda_packages`` are
    the requirements read from the files, as written there.  ``variables`` are environment
    variables set for the run, each a ``str`` or a :class:`~mlboot.Secret`.  A value given as a
    ``str`` under a name that looks like a secret's (``HF_TOKEN``, ``WANDB_API_KEY``...: the
    rule is in :doc:`/howto/environments`) is held as a :class:`~mlboot.Secret` too, so it never
    shows in ``repr``, messages or ``attrs.asdict``; the script gets every value unchanged.
    """

    kind: EnvironmentKind = attrs.field(validator=lambda _, __, v: _check_kind(v))
    name: str = attrs.field(validator=lambda env, _, v: _check_name_of(env, v))
    python_version: str | None = attrs.field(
        default=None, validator=lambda _, __, v: _check_optional_python_version(v)
    )
    pip_requirements: Path | None = attrs.field(
        default=None, validator=lambda _, a, v: _check_file_field(a.name, v)
    )
    conda_specification: Path | None = attrs.field(
        default=None, validator=lambda _, a, v: _check_file_field(a.name, v)
    )
    docker_image: str | None = attrs.field(
        default=None, validator=lambda _, __, v: _check_image(v, optional=True)
    )
    version: str | None = attrs.field(default=None, validator=lambda _, __, v: _check_version(v))
    pip_packages: tuple[str, ...] = attrs.field(
        default=(), validator=lambda _, a, v: _check_packages(a.name, v)
    )
    conda_packages: tuple[str, ...] = attrs.field(
        default=(), validator=lambda _, a, v: _check_packages(a.name, v)
    )
    variables: Mapping[str, str | Secret] = attrs.field(
        factory=dict, hash=False, validator=lambda env, _, v: _check_shape(env, v)
    )

    @classmethod
    def from_pip_requirements(
        cls,
        path: str | os.PathLike[str],
        *,
        python_version: str | None = None,
        name: str = DEFAULT_ENVIRONMENT_NAME,
        variables: Mapping[str, str | Secret] | None = None,
    ) -> Environment:
        """An environment that pip-installs the requirements file ``path``.

        Every line must be a requirement (``numpy>=1.26``, ``torch==2.3.1``,
        ``pkg @ https://...``), a comment, or one of the pip options that work remotely
        (``--index-url``, ``--extra-index-url``, ``--find-links``, ``--trusted-host``,
        ``--pre``, ``--prefer-binary``, ``--no-binary``, ``--only-binary``); ``-r``, ``-c`` and
        ``-e`` lines and local paths are refused, because the file is not built where it is.
        ``python_version`` defaults to this interpreter's major.minor version.
        """
        file = _existing_file("pip_requirements", path)
        packages = _parse_pip_file(file)
        return cls(
            kind="pip",
            name=_check_new_name(name),
            python_version=_python_version_or_local(python_version),
            pip_requirements=file,
            pip_packages=packages,
            variables=_check_variables(variables),
        )

    @classmethod
    def from_conda_specification(
        cls,
        path: str | os.PathLike[str],
        *,
        python_version: str | None = None,
        name: str = DEFAULT_ENVIRONMENT_NAME,
        variables: Mapping[str, str | Secret] | None = None,
    ) -> Environment:
        """An environment built from the conda environment file ``path`` (``environment.yml``).

        The file must be YAML with only the keys azureml-core accepts (``name``, ``channels``,
        ``dependencies``, ``prefix``, ``variables``); each dependency is a conda package or a
        ``pip:`` list checked like a requirements file.  A Python pin in the file
        (``python=3.10``) is used; ``python_version`` may repeat it but not contradict it.
        Without either, this interpreter's major.minor version is used.
        """
        file = _existing_file("conda_specification", path)
        conda_packages, pip_packages, pinned = _parse_conda_file(file)
        return cls(
            kind="conda",
            name=_check_new_name(name),
            python_version=_python_version_with_pin(python_version, pinned, file),
            conda_specification=file,
            pip_packages=pip_packages,
            conda_packages=conda_packages,
            variables=_check_variables(variables),
        )

    @classmethod
    def from_docker_image(
        cls,
        image: str,
        *,
        conda_specification: str | os.PathLike[str] | None = None,
        pip_requirements: str | os.PathLike[str] | None = None,
        python_version: str | None = None,
        name: str = DEFAULT_ENVIRONMENT_NAME,
        variables: Mapping[str, str | Secret] | None = None,
    ) -> Environment:
        """An environment based on the Docker image ``image`` (``registry/path:tag``).

        Alone, the image is used as it is: its own Python and packages run the script, and
        ``python_version`` must not be given.  With a conda file or a pip requirements file (not
        both), Azure ML builds a conda environment with them on top of the image, with the
        Python version chosen as in :meth:`from_conda_specification` and
        :meth:`from_pip_requirements`.  A private registry must be reachable by the workspace.
        """
        checked_image = _check_image(image)
        checked_name = _check_new_name(name)
        checked_variables = _check_variables(variables)
        if conda_specification is not None and pip_requirements is not None:
            raise InvalidInputError(
                "pip_requirements",
                pip_requirements,
                "an environment takes a conda file or a pip requirements file, not both",
                "list the pip requirements in the conda file's 'pip:' section and pass only "
                "conda_specification",
            )
        if conda_specification is not None:
            conda = cls.from_conda_specification(
                conda_specification, python_version=python_version, name=checked_name
            )
            return attrs.evolve(
                conda, kind="docker", docker_image=checked_image, variables=checked_variables
            )
        if pip_requirements is not None:
            pip = cls.from_pip_requirements(
                pip_requirements, python_version=python_version, name=checked_name
            )
            return attrs.evolve(
                pip, kind="docker", docker_image=checked_image, variables=checked_variables
            )
        if python_version is not None:
            raise InvalidInputError(
                "python_version",
                python_version,
                "an image alone runs its own Python, so a version cannot be chosen",
                "leave python_version out, or pass conda_specification or pip_requirements to "
                "have Azure ML build a Python environment on top of the image",
            )
        return cls(
            kind="docker",
            name=checked_name,
            docker_image=checked_image,
            variables=checked_variables,
        )

    @classmethod
    def from_registered(
        cls,
        name: str,
        version: str | int | None = None,
        *,
        variables: Mapping[str, str | Secret] | None = None,
    ) -> Environment:
        """An environment registered in the workspace, or a curated one (``AzureML-...``).

        ``version`` picks one version; ``None`` takes the latest when the run is submitted
        (pass a version for reproducible runs).  The environment itself is looked up only when
        the run is submitted.
        """
        return cls(
            kind="registered",
            name=_check_registered_name(name),
            version=_check_version(version),
            variables=_check_variables(variables),
        )


# -- checks ----------------------------------------------------------------------------------------


def validate_environment(environment: Environment) -> None:
    """Check every field of ``environment`` again, as its constructor did.

    For a value built directly or changed after it was built (``object.__setattr__``), before
    a run is submitted with it: a bad value raises
    :class:`~mlboot.exceptions.InvalidInputError` naming the field.
    """
    attrs.validate(environment)


_KINDS = ("pip", "conda", "docker", "registered")
_BUILD_FIX = (
    "build it with Environment.from_pip_requirements(...), from_conda_specification(...), "
    "from_docker_image(...) or from_registered(...), and do not change it afterwards"
)


def _check_kind(kind: object) -> None:
    if not isinstance(kind, str) or kind not in _KINDS:
        raise InvalidInputError("kind", kind, f"it must be one of {', '.join(_KINDS)}", _BUILD_FIX)


def _check_name_of(environment: Environment, name: object) -> None:
    if environment.kind == "registered":
        _check_registered_name(name)
    else:
        _check_new_name(name)


def _check_optional_python_version(value: object) -> None:
    if value is not None:
        _check_python_version(value)


def _check_file_field(field: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, Path):
        raise InvalidInputError(field, value, "it must be a pathlib.Path or None", _BUILD_FIX)
    path_text(field, value, fix=_BUILD_FIX)


def _check_packages(field: str, value: object) -> None:
    if not isinstance(value, tuple) or not all(
        isinstance(item, str) and item and "\x00" not in item for item in value
    ):
        raise InvalidInputError(
            field, value, "it must be a tuple of requirement strings (no NUL)", _BUILD_FIX
        )


def _check_shape(environment: Environment, variables: object) -> None:
    """The variables, then that the fields fit the kind (what the class methods guarantee)."""
    _check_variables(variables)
    kind = environment.kind
    files = (environment.pip_requirements, environment.conda_specification)
    needed = {"pip": files[0], "conda": files[1], "docker": environment.docker_image}
    if kind in needed and needed[kind] is None:
        field = {"pip": "pip_requirements", "conda": "conda_specification"}.get(
            kind, "docker_image"
        )
        raise InvalidInputError(field, None, f"a {kind!r} environment needs one", _BUILD_FIX)
    if files[0] is not None and files[1] is not None:
        raise InvalidInputError(
            "pip_requirements",
            files[0],
            "an environment takes a conda file or a pip requirements file, not both",
            _BUILD_FIX,
        )
    if kind in {"pip", "conda"} and environment.docker_image is not None:
        raise InvalidInputError(
            "docker_image", environment.docker_image, f"a {kind!r} environment has none", _BUILD_FIX
        )
    if kind != "registered" and environment.version is not None:
        raise InvalidInputError(
            "version", environment.version, "only a registered environment has one", _BUILD_FIX
        )
    if kind == "registered" and any(
        v is not None for v in (*files, environment.docker_image, environment.python_version)
    ):
        raise InvalidInputError(
            "kind",
            kind,
            "a registered environment has no files, image or python_version of its own",
            _BUILD_FIX,
        )
    if kind in {"pip", "conda"} and environment.python_version is None:
        raise InvalidInputError(
            "python_version", None, f"a {kind!r} environment names its Python", _BUILD_FIX
        )


def _check_new_name(name: object) -> str:
    if not isinstance(name, str) or not _NEW_NAME.fullmatch(name):
        raise InvalidInputError(
            "name",
            name,
            "an environment name must be 1 to 255 ASCII letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            "pass a name such as 'train-env'",
        )
    return name


def _check_registered_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise InvalidInputError(
            "name",
            name,
            "it must be the non-empty name of a registered environment, without surrounding spaces",
            "pass the name shown in Azure ML studio, Environments",
        )
    return name


def _check_version(version: object) -> str | None:
    fix = "pass the version shown in Azure ML studio, e.g. '3', or None for the latest"
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, str | int):
        raise InvalidInputError("version", version, "it must be a str or an int", fix)
    text = str(version)
    if not text.strip() or text != text.strip():
        raise InvalidInputError(
            "version", version, "it must be non-empty, without surrounding spaces", fix
        )
    return text


def _check_python_version(value: object) -> str:
    match = _PYTHON_VERSION.fullmatch(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) < _MIN_PYTHON_MINOR:
        raise InvalidInputError(
            "python_version",
            value,
            _PYTHON_VERSION_RULE,
            f"pass e.g. python_version='{local_python_version()}' (this interpreter's), or "
            "leave it out to use this interpreter's",
        )
    return value  # type: ignore[return-value]  # a match means it is a str


def _python_version_or_local(value: str | None) -> str:
    return local_python_version() if value is None else _check_python_version(value)


def _python_version_with_pin(value: str | None, pinned: str | None, file: Path) -> str:
    if value is None:
        return pinned if pinned is not None else local_python_version()
    checked = _check_python_version(value)
    if pinned is not None and pinned != checked:
        raise InvalidInputError(
            "python_version",
            value,
            f"{file} pins python={pinned}, which contradicts it",
            "pass the same version as the file, or change or remove the file's python pin",
        )
    return checked


def _check_variables(variables: object) -> dict[str, str | Secret]:
    # A str under a name that looks like a secret's is held as a Secret; no message shows the
    # value of a Secret or of such a name.
    if variables is None:
        return {}
    if not isinstance(variables, Mapping):
        raise InvalidInputError(
            "variables",
            Undisclosed(variables),
            "it must be a mapping of names to values (not shown: it may hold secrets)",
            "pass a dict, e.g. {'TOKENIZERS_PARALLELISM': 'false'}",
        )
    checked: dict[str, str | Secret] = {}
    for key, value in variables.items():
        if not isinstance(key, str) or not _VARIABLE_NAME.fullmatch(key):
            raise InvalidInputError(
                "variables",
                key,
                "an environment variable name must be ASCII letters, digits and '_', not "
                "starting with a digit",
                "rename the variable, e.g. 'MY_SETTING'",
            )
        hidden = (
            " (not shown: it is a Secret)"
            if isinstance(value, Secret)
            else " (not shown: its name looks like a secret's)"
            if looks_secret(key)
            else ""
        )
        text = value.reveal() if isinstance(value, Secret) else value
        if not isinstance(text, str) or "\x00" in text:
            raise InvalidInputError(
                f"variables[{key!r}]",
                value if isinstance(value, Secret) or not hidden else Undisclosed(value),
                "an environment variable's value must be a str or an mlboot.Secret, without NUL "
                "characters" + hidden,
                f"pass str(value), e.g. {{{key!r}: '1'}}, or mlboot.Secret(value) for a secret",
            )
        wrap = hidden and not isinstance(value, Secret) and text  # an empty value hides nothing
        checked[key] = Secret(text) if wrap else value
    return checked


def _check_image(image: object, *, optional: bool = False) -> str | None:
    if image is None and optional:
        return None
    if not isinstance(image, str) or not _IMAGE.fullmatch(image):
        raise InvalidInputError(
            "image",
            image,
            "it must be a Docker image reference: [registry/]path[:tag][@digest], the path in "
            "lower case",
            "pass e.g. 'mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest' or "
            "'myregistry.azurecr.io/train:1.4'",
        )
    return image


def _existing_file(field: str, path: object) -> Path:
    raw, file = absolute_path(field, path, what="path to a file", fix="pass a str or pathlib.Path")
    exists, is_file, _ = probe(file)
    if not is_file:
        what = "is not a file" if exists else "does not exist"
        raise InvalidInputError(
            field,
            raw,
            f"{what} (looked for {file})",
            f"pass the path of an existing file; relative paths start from {Path.cwd()}",
        )
    return file


def _read_text(field: str, file: Path) -> str:
    # azureml-core opens these files with open(path): the locale's encoding, as here.
    try:
        return file.read_text(encoding="locale")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            field,
            str(file),
            f"it cannot be read as text in this locale's encoding ({exc})",
            "make it a readable text file (UTF-8 in a UTF-8 locale)",
        ) from exc


# -- pip requirements ------------------------------------------------------------------------------


def pip_logical_lines(lines: Iterable[str]) -> list[tuple[int, str]]:
    """A requirements file's logical lines as pip reads them, each with its first line's number.

    As pip's ``join_lines``: a line ending in a backslash goes on in the next one (joined with
    nothing between, the backslash dropped), except a comment line; then comments are removed,
    and blank lines left out.
    """
    found: list[tuple[int, str]] = []

    def add(number: int, logical: str) -> None:
        text = _PIP_COMMENT.sub("", logical).strip()
        if text:
            found.append((number, text))

    pending: list[str] = []
    start = 0
    for number, raw in enumerate(lines, start=1):
        physical = raw.rstrip("\r\n")
        comment = _PIP_COMMENT_LINE.match(physical) is not None
        if physical.endswith("\\") and not comment:
            if not pending:
                start = number
            pending.append(physical.strip("\\"))
            continue
        if pending:
            add(start, "".join([*pending, " " + physical if comment else physical]))
            pending = []
        else:
            add(number, physical)
    if pending:
        add(start, "".join(pending))
    return found


def _check_pip_line(line: str) -> str | None:
    """Return the requirement a line names (``None`` for an option), or raise ``ValueError``."""
    if line.startswith("-"):
        parts = _PIP_OPTION.fullmatch(line)
        option, value = (parts.group(1), parts.group(2) or "") if parts else (line, "")
        if option in _PIP_REFUSED_OPTIONS:
            raise ValueError(_PIP_REFUSED_OPTIONS[option])
        if option in _PIP_FLAG_OPTIONS and not value.strip():
            return None
        if option in _PIP_VALUE_OPTIONS and value.strip():
            return None
        allowed = ", ".join(sorted(_PIP_VALUE_OPTIONS | _PIP_FLAG_OPTIONS))
        raise ValueError(f"it is not a pip option that works where Azure ML builds ({allowed})")
    requirement_text = _PIP_HASH_OPTION.sub("", " " + line).strip()
    # Imported here: packaging costs ~30 ms, paid only when a requirements file is read.
    from packaging.requirements import InvalidRequirement, Requirement  # noqa: PLC0415

    try:
        requirement = Requirement(requirement_text)
    except InvalidRequirement as exc:
        hint = ""
        if "/" in line or "\\" in line or line.startswith("."):
            hint = " (local paths and bare URLs are not requirements: write 'name @ https://...')"
        raise ValueError(f"it is not a valid requirement: {exc}{hint}") from exc
    if requirement.url is not None and requirement.url.startswith("file:"):
        raise ValueError("a file: URL names a local file, which Azure ML's image build cannot see")
    return " ".join(requirement_text.split())


def _pip_packages(field: str, source: Path, lines: list[tuple[str, str]]) -> tuple[str, ...]:
    packages: list[str] = []
    for where, line in lines:
        try:
            requirement = _check_pip_line(line)
        except ValueError as exc:
            raise InvalidInputError(
                field,
                str(source),
                f"{where} ({line!r}): {exc}",
                "fix or remove that line; pip's requirement syntax is described at "
                "https://pip.pypa.io/en/stable/reference/requirements-file-format/",
            ) from exc
        if requirement is not None:
            packages.append(requirement)
    return tuple(packages)


def _parse_pip_file(file: Path) -> tuple[str, ...]:
    text = _read_text("pip_requirements", file)
    lines = pip_logical_lines(text.splitlines())
    return _pip_packages("pip_requirements", file, [(f"line {n}", line) for n, line in lines])


# -- conda environment files -----------------------------------------------------------------------


def _parse_conda_file(file: Path) -> tuple[tuple[str, ...], tuple[str, ...], str | None]:
    """Read a conda file: its conda packages, its pip packages and its Python pin, if any."""
    return _CondaFile(file).read()


def _parse_yaml(text: str) -> object:
    """Parse a conda file as azureml-core's reader will; ``ValueError`` if it is not YAML.

    PyYAML, a dependency of both Azure ML SDKs (azureml-core's through knack, azure-ai-ml's
    directly), declared by mlboot: the value types do not import an SDK.  azureml-core reads
    conda files with the ruamel.yaml it vendors, in YAML 1.2 round-trip mode, so this refuses
    duplicate keys as that reader does, and only ``true``/``false`` are booleans (not YAML 1.1's
    ``yes``/``no``/``on``/``off``).  Imported on first use: only conda files pay for it.
    """
    import yaml  # noqa: PLC0415  (only conda files pay for it)

    class Loader(yaml.SafeLoader):
        def construct_mapping(
            self,
            node: yaml.MappingNode,
            deep: bool = False,  # noqa: FBT001, FBT002  (PyYAML's signature)
        ) -> dict[object, object]:
            seen: list[object] = []
            for key_node, _value in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key!r}",
                        key_node.start_mark,
                    )
                seen.append(key)
            return super().construct_mapping(node, deep=deep)

    bool_tag = "tag:yaml.org,2002:bool"
    Loader.yaml_implicit_resolvers = {
        first: [(tag, rule) for tag, rule in resolvers if tag != bool_tag]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        bool_tag, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506  (a SafeLoader)
    except yaml.YAMLError as exc:
        raise ValueError(" ".join(str(exc).split())) from None


class _CondaFile:
    """One conda environment file, checked the way azureml-core will read it."""

    field = "conda_specification"

    def __init__(self, file: Path) -> None:
        self.file = file
        self.conda_packages: list[str] = []
        self.pip_packages: list[str] = []
        self.pins: list[str | None] = []

    def refuse(self, rule: str, fix: str) -> InvalidInputError:
        return InvalidInputError(self.field, str(self.file), rule, fix)

    def read(self) -> tuple[tuple[str, ...], tuple[str, ...], str | None]:
        document = self.load()
        channels = document.get("channels", [])
        if not isinstance(channels, list) or not all(isinstance(c, str) and c for c in channels):
            raise self.refuse(
                "'channels' must be a list of channel names", "e.g. channels: [conda-forge]"
            )
        dependencies = document.get("dependencies", [])
        if not isinstance(dependencies, list):
            raise self.refuse(
                "'dependencies' must be a list", "list one package per line, each after '- '"
            )
        for position, item in enumerate(dependencies, start=1):
            if isinstance(item, Mapping) and list(item) == ["pip"]:
                self.add_pip_list(item["pip"])
            else:
                self.add_conda_package(position, item)
        if len(self.pins) > 1:
            raise self.refuse("it names python more than once", "keep one 'python=3.X' line")
        pin = self.pins[0] if self.pins else None
        return tuple(self.conda_packages), tuple(self.pip_packages), pin

    def load(self) -> Mapping[object, object]:
        text = _read_text(self.field, self.file)
        try:
            document = _parse_yaml(text)
        except ValueError as exc:
            raise self.refuse(
                f"it is not valid YAML: {exc}", "fix the YAML syntax (e.g. with a YAML linter)"
            ) from exc
        if not isinstance(document, Mapping):
            raise self.refuse(
                "a conda environment file must be a YAML mapping (name, channels, dependencies)",
                "write it as 'conda env export --no-builds' does",
            )
        unknown = [str(key) for key in document if key not in _CONDA_KEYS]
        if unknown:
            raise self.refuse(
                f"it has keys azureml-core refuses ({', '.join(unknown)}); allowed: "
                f"{', '.join(_CONDA_KEYS)}",
                "remove those keys",
            )
        return document

    def add_pip_list(self, pip_list: object) -> None:
        if not isinstance(pip_list, list) or not all(isinstance(p, str) for p in pip_list):
            raise self.refuse(
                "the 'pip:' entry must be a list of requirements", "e.g. pip: [numpy]"
            )
        lines = [
            (f"pip dependency {index}", _PIP_COMMENT.sub("", line).strip())
            for index, line in enumerate(pip_list, start=1)
        ]
        self.pip_packages.extend(
            _pip_packages(self.field, self.file, [(w, line) for w, line in lines if line])
        )

    def add_conda_package(self, position: int, item: object) -> None:
        spec = item.strip() if isinstance(item, str) else ""
        match = _CONDA_SPEC.fullmatch(spec)
        if match is None:
            raise self.refuse(
                f"dependency {position} ({item!r}) is neither a conda package spec nor a "
                "'pip:' list",
                "write conda packages as 'name', 'name=version' or 'channel::name=version'",
            )
        if match.group(1).lower() == "python":
            self.pins.append(self.python_pin(spec))
        self.conda_packages.append(spec)

    def python_pin(self, spec: str) -> str | None:
        if spec == "python":
            return None
        pin = _CONDA_PYTHON_PIN.fullmatch(spec)
        version = pin.group(1) if pin else None
        version_match = _PYTHON_VERSION.fullmatch(version) if version else None
        if version_match is None:
            raise self.refuse(
                f"its python dependency {spec!r} is not a plain pin azureml-core understands",
                "write it as 'python=3.X' (or 'python=3.X.Y'), or remove it and pass "
                "python_version",
            )
        if int(version_match.group(1)) < _MIN_PYTHON_MINOR:
            raise self.refuse(
                f"it pins {spec}, older than the Python 3.8 Azure ML supports",
                f"pin a newer Python, e.g. python={local_python_version()}",
            )
        return version_match.group(0)
