"""At least forty distinct bad inputs, each refused with its exact error type, a message naming
the field, and no remote call.

Every case is one entry of :data:`REGISTRY`; the suite counts them, and the session summary
reports how many were tried and handled.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest
from reliability_ledger import LEDGER

import mlboot
from mlboot._cli import ExitCode, main
from mlboot.exceptions import (
    ConfigError,
    ConfigNotFoundError,
    InvalidInputError,
    MlbootError,
)
from mlboot.testing import FakeBackend, use_backend

GUID = "00000000-0000-0000-0000-000000000000"


@attrs.frozen
class Context:
    fake: FakeBackend
    workspace: mlboot.Workspace
    tmp: Path
    source: Path

    def config(self, content: str | bytes, name: str = "config.json") -> Path:
        folder = self.tmp / "files"
        folder.mkdir(exist_ok=True)
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def keys(self, **overrides: object) -> Path:
        data: dict[str, object] = {
            "subscription_id": GUID,
            "resource_group": "rg",
            "workspace_name": "ws-rel",
        }
        data.update(overrides)
        return self.config(json.dumps({k: v for k, v in data.items() if v is not _DROP}))

    def load(self, path: object) -> mlboot.Workspace:
        return mlboot.workspace_from_config(path, backend=self.fake)  # type: ignore[arg-type]

    def cluster(self, name: object = "gpu-new", **overrides: object) -> mlboot.ComputeTarget:
        arguments: dict[str, object] = {"vm_size": "Standard_DS3_v2", "max_nodes": 2}
        arguments.update(overrides)
        return mlboot.get_or_create_compute_target(self.workspace, name, **arguments)  # type: ignore[arg-type]

    def submit(self, **overrides: object) -> mlboot.Run:
        arguments: dict[str, object] = {
            "compute": "cpu",
            "experiment": "exp",
            "source_directory": self.source,
        }
        arguments.update(overrides)
        script = arguments.pop("script", "train.py")
        return mlboot.submit_script(self.workspace, script, **arguments)  # type: ignore[arg-type]

    def run(self) -> mlboot.Run:
        return mlboot.Run(id="run-1", experiment="exp", workspace=self.workspace)


_DROP = object()


@attrs.frozen
class BadInput:
    id: str
    attempt: Callable[[Context], object]
    error: type[MlbootError]
    names: str
    """Text the message must contain: the field (or, for a whole file, the file's name)."""
    lookup: bool = False
    """True when the rule can only apply after the compute lookup (a new cluster's name)."""


def _field(case_id: str, call: str, **keyword: object) -> BadInput:
    """``Context.<call>(<field>=value)``, refused with an InvalidInputError naming the field."""
    ((field, value),) = keyword.items()
    return BadInput(case_id, lambda c: getattr(c, call)(**{field: value}), InvalidInputError, field)


def _symlink_loop(ctx: Context) -> object:
    folder = ctx.tmp / "loop"
    folder.mkdir()
    (folder / "config.json").symlink_to("other.json")
    (folder / "other.json").symlink_to("config.json")
    return ctx.load(folder)


def _directory_named_config(ctx: Context) -> object:
    folder = ctx.tmp / "dir-as-file"
    (folder / "config.json").mkdir(parents=True)
    return ctx.load(folder)


def _unreadable(ctx: Context) -> object:
    # Tests run as root, where chmod 000 stops nothing; /proc/self/mem is a regular file whose
    # read fails with EIO at offset 0 for anyone.
    if not Path("/proc/self/mem").is_file():
        pytest.skip("needs Linux /proc/self/mem for a file that exists but cannot be read")
    return ctx.load("/proc/self/mem")


def _huge_garbage(ctx: Context) -> object:
    # 8 MiB of valid-looking JSON with a broken tail: refused by its size, before it is read.
    return ctx.load(ctx.config('{"pad": "' + "x" * (8 << 20) + '", oops}', "huge.json"))


def _script_link_outside(ctx: Context) -> object:
    secret = ctx.tmp / "outside.py"
    secret.write_text("print('outside')\n", encoding="utf-8")
    (ctx.source / "linked.py").symlink_to(secret)
    return ctx.submit(script="linked.py")


def _source_with_loop(ctx: Context) -> object:
    (ctx.source / "a").symlink_to("b")
    (ctx.source / "b").symlink_to("a")
    return ctx.submit()


def _ignored_script(ctx: Context) -> object:
    (ctx.source / ".amlignore").write_text("train.py\n", encoding="utf-8")
    return ctx.submit()


def _outputs_is_a_file(ctx: Context) -> object:
    (ctx.tmp / "dest").mkdir()
    (ctx.tmp / "dest" / "outputs").write_text("", encoding="utf-8")
    return ctx.run().download_outputs(ctx.tmp / "dest")


def _long_name_on_local(ctx: Context) -> object:
    local = attrs.evolve(ctx.workspace, backend=mlboot.LocalBackend(ctx.tmp / "local"))
    return mlboot.get_or_create_compute_target(
        local, "a" * 253, vm_size="Standard_DS3_v2", max_nodes=1
    )


def _environment_changed_after_building(ctx: Context) -> object:
    requirements = ctx.tmp / "requirements.txt"
    requirements.write_text("attrs\n", encoding="utf-8")
    environment = mlboot.Environment.from_pip_requirements(requirements)
    object.__setattr__(environment, "variables", {"A": 1})
    return ctx.submit(environment=environment)


def _existing_file_destination(ctx: Context) -> object:
    target = ctx.tmp / "a-file"
    target.write_text("", encoding="utf-8")
    return ctx.run().download_outputs(target)


REGISTRY: list[BadInput] = [
    # -- config files ------------------------------------------------------------------------
    BadInput(
        "config-malformed-json",
        lambda c: c.load(c.config('{"subscription_id": ')),
        ConfigError,
        "not valid JSON",
    ),
    BadInput("config-empty-file", lambda c: c.load(c.config("")), ConfigError, "config.json"),
    BadInput("config-json-array", lambda c: c.load(c.config("[1, 2]")), ConfigError, "list"),
    BadInput("config-json-null", lambda c: c.load(c.config("null")), ConfigError, "NoneType"),
    BadInput(
        "config-utf16-with-bom",
        lambda c: c.load(c.config('{"a": 1}'.encode("utf-16"))),
        ConfigError,
        "UTF-8",
    ),
    BadInput(
        "config-latin1-bytes",
        lambda c: c.load(c.config(b'{"workspace_name": "w\xe9"}')),
        ConfigError,
        "UTF-8",
    ),
    BadInput(
        "config-subscription-not-guid",
        lambda c: c.load(c.keys(subscription_id="abc")),
        ConfigError,
        "subscription_id",
    ),
    BadInput(
        "config-subscription-wrong-type",
        lambda c: c.load(c.keys(subscription_id=123)),
        ConfigError,
        "subscription_id",
    ),
    BadInput(
        "config-resource-group-list",
        lambda c: c.load(c.keys(resource_group=["rg"])),
        ConfigError,
        "resource_group",
    ),
    BadInput(
        "config-resource-group-trailing-dot",
        lambda c: c.load(c.keys(resource_group="rg.")),
        ConfigError,
        "resource_group",
    ),
    BadInput(
        "config-workspace-control-char",
        lambda c: c.load(c.keys(workspace_name="ws\x00x")),
        ConfigError,
        "workspace_name",
    ),
    BadInput(
        "config-workspace-unicode",
        lambda c: c.load(c.keys(workspace_name="wörkspace")),
        ConfigError,
        "workspace_name",
    ),
    BadInput(
        "config-workspace-missing",
        lambda c: c.load(c.keys(workspace_name=_DROP)),
        ConfigError,
        "workspace_name",
    ),
    BadInput(
        "config-workspace-too-long",
        lambda c: c.load(c.keys(workspace_name="w" * 34)),
        ConfigError,
        "workspace_name",
    ),
    BadInput(
        "config-tenant-not-guid",
        lambda c: c.load(c.keys(tenant_id="contoso")),
        ConfigError,
        "tenant_id",
    ),
    BadInput("config-unknown-cloud", lambda c: c.load(c.keys(cloud="Mars")), ConfigError, "cloud"),
    BadInput(
        "config-unknown-backend",
        lambda c: c.load(c.keys(mlboot_backend="k8s")),
        ConfigError,
        "backend",
    ),
    BadInput(
        "config-scope-not-arm-id", lambda c: c.load(c.keys(Scope="/nope")), ConfigError, "Scope"
    ),
    BadInput("config-huge-file", _huge_garbage, ConfigError, "huge.json"),
    BadInput(
        "config-deeply-nested-json",
        lambda c: c.load(c.config("[" * 100_000, "nested.json")),
        ConfigError,
        "nested.json",
    ),
    BadInput("config-path-int", lambda c: c.load(123), InvalidInputError, "path"),
    BadInput("config-path-nul", lambda c: c.load("conf\x00ig.json"), InvalidInputError, "path"),
    BadInput(
        "config-backend-unknown-name",
        lambda c: mlboot.workspace_from_config(c.keys(), backend="k8s"),  # type: ignore[arg-type]
        InvalidInputError,
        "backend",
    ),
    BadInput(
        "local-backend-root-nul",
        lambda _: mlboot.LocalBackend("a\x00b"),
        InvalidInputError,
        "root",
    ),
    BadInput(
        "local-backend-root-int",
        lambda _: mlboot.LocalBackend(123),  # type: ignore[arg-type]
        InvalidInputError,
        "root",
    ),
    BadInput("config-path-bytes", lambda c: c.load(b"config.json"), InvalidInputError, "path"),
    BadInput(
        "config-directory-instead-of-file",
        _directory_named_config,
        ConfigNotFoundError,
        "dir-as-file",
    ),
    BadInput(
        "config-missing-path",
        lambda c: c.load(c.tmp / "nowhere" / "config.json"),
        ConfigNotFoundError,
        "nowhere",
    ),
    BadInput("config-symlink-loop", _symlink_loop, ConfigNotFoundError, "loop"),
    BadInput("config-unreadable", _unreadable, ConfigError, "cannot read"),
    # -- get_or_create_compute_target ----------------------------------------------------------
    BadInput(
        "compute-workspace-not-workspace",
        lambda _: mlboot.get_or_create_compute_target(
            "ws",
            "gpu",
            vm_size="Standard_D2_v2",  # type: ignore[arg-type]
            max_nodes=1,
        ),
        InvalidInputError,
        "workspace",
    ),
    BadInput("compute-name-empty", lambda c: c.cluster(""), InvalidInputError, "name"),
    BadInput("compute-name-int", lambda c: c.cluster(42), InvalidInputError, "name"),
    _field("compute-vm-size-no-prefix", "cluster", vm_size="DS3_v2"),
    _field("compute-vm-size-unicode", "cluster", vm_size="Standard_DS3_v2é"),
    _field("compute-vm-size-newline", "cluster", vm_size="Standard_DS3\n_v2"),
    _field("compute-vm-size-none", "cluster", vm_size=None),
    _field("compute-priority-spot", "cluster", vm_priority="spot"),
    _field("compute-max-nodes-zero", "cluster", max_nodes=0),
    _field("compute-max-nodes-bool", "cluster", max_nodes=True),
    _field("compute-max-nodes-float", "cluster", max_nodes=2.5),
    _field("compute-min-nodes-negative", "cluster", min_nodes=-1),
    BadInput(
        "compute-min-above-max",
        lambda c: c.cluster(min_nodes=3, max_nodes=2),
        InvalidInputError,
        "min_nodes",
    ),
    _field("compute-idle-negative", "cluster", idle_seconds_before_scaledown=-5),
    _field("compute-on-mismatch-unknown", "cluster", on_mismatch="ignore"),
    _field("compute-timeout-zero", "cluster", timeout=0),
    _field("compute-timeout-nan", "cluster", timeout=float("nan")),
    BadInput(
        "compute-name-control-char",
        lambda c: c.cluster("gpu\x07x"),
        InvalidInputError,
        "name",
    ),
    BadInput(
        "compute-name-unicode",
        lambda c: c.cluster("gpü-cluster"),
        InvalidInputError,
        "name",
    ),
    BadInput(
        "compute-name-url-syntax",
        lambda c: c.cluster("gpu/../other"),
        InvalidInputError,
        "name",
    ),
    BadInput(
        "compute-name-space",
        lambda c: c.cluster("cpu cluster"),
        InvalidInputError,
        "name",
    ),
    BadInput(
        "compute-name-longer-than-any-rule-on-local",
        _long_name_on_local,
        InvalidInputError,
        "name",
    ),
    _field("compute-show-output-str", "cluster", show_output="yes"),
    _field("compute-wait-int", "cluster", wait=1),
    BadInput(
        "compute-new-name-reserved",
        lambda c: c.cluster("local"),
        InvalidInputError,
        "name",
        lookup=True,
    ),
    # -- submit_script ---------------------------------------------------------------------------
    _field("submit-experiment-empty", "submit", experiment=""),
    _field("submit-experiment-unicode", "submit", experiment="expé rience"),
    _field("submit-experiment-too-long", "submit", experiment="e" * 300),
    _field("submit-compute-blank", "submit", compute=" cpu "),
    _field("submit-arguments-str", "submit", arguments="--epochs 3"),
    BadInput(
        "submit-arguments-bool",
        lambda c: c.submit(arguments=["--fp16", True]),
        InvalidInputError,
        "arguments[1]",
    ),
    BadInput(
        "submit-arguments-object",
        lambda c: c.submit(arguments=[object()]),
        InvalidInputError,
        "arguments[0]",
    ),
    _field("submit-tags-not-mapping", "submit", tags="team"),
    BadInput(
        "submit-tags-int-value",
        lambda c: c.submit(tags={"epochs": 3}),
        InvalidInputError,
        "tags['epochs']",
    ),
    _field("submit-node-count-zero", "submit", node_count=0),
    _field("submit-node-count-bool", "submit", node_count=True),
    _field("submit-nodes-without-distribution", "submit", node_count=2),
    _field("submit-distribution-str", "submit", distribution="pytorch"),
    _field("submit-environment-str", "submit", environment="sklearn"),
    _field("submit-max-duration-negative", "submit", max_run_duration=dt.timedelta(seconds=-1)),
    _field("submit-script-dotdot", "submit", script="../outside.py"),
    _field("submit-script-absolute-outside", "submit", script="/etc/hostname"),
    BadInput("submit-script-symlink-outside", _script_link_outside, InvalidInputError, "script"),
    _field("submit-script-missing", "submit", script="nope.py"),
    BadInput(
        "submit-script-is-directory",
        lambda c: (c.source.joinpath("pkg").mkdir(), c.submit(script="pkg")),
        InvalidInputError,
        "script",
    ),
    BadInput("submit-script-ignored", _ignored_script, InvalidInputError, "script"),
    _field("submit-script-nul", "submit", script="tr\x00ain.py"),
    _field("submit-source-nul", "submit", source_directory="s\x00rc"),
    BadInput(
        "submit-environment-changed-after-building",
        _environment_changed_after_building,
        InvalidInputError,
        "variables['A']",
    ),
    BadInput(
        "submit-source-is-file",
        lambda c: c.submit(source_directory=c.source / "train.py"),
        InvalidInputError,
        "source_directory",
    ),
    BadInput(
        "submit-source-missing",
        lambda c: c.submit(source_directory=c.tmp / "gone"),
        InvalidInputError,
        "source_directory",
    ),
    BadInput(
        "submit-source-symlink-loop", _source_with_loop, InvalidInputError, "source_directory"
    ),
    # -- Run methods and get_run -----------------------------------------------------------------
    BadInput(
        "wait-timeout-negative", lambda c: c.run().wait(timeout=-5), InvalidInputError, "timeout"
    ),
    BadInput(
        "wait-timeout-str",
        lambda c: c.run().wait(timeout="10"),
        InvalidInputError,  # type: ignore[arg-type]
        "timeout",
    ),
    BadInput(
        "wait-poll-interval-zero",
        lambda c: c.run().wait(poll_interval=0),
        InvalidInputError,
        "poll_interval",
    ),
    BadInput(
        "wait-poll-interval-inf",
        lambda c: c.run().wait(poll_interval=float("inf")),
        InvalidInputError,
        "poll_interval",
    ),
    BadInput(
        "wait-cancel-on-interrupt-str",
        lambda c: c.run().wait(cancel_on_interrupt="yes"),  # type: ignore[arg-type]
        InvalidInputError,
        "cancel_on_interrupt",
    ),
    BadInput(
        "download-destination-is-file", _existing_file_destination, InvalidInputError, "destination"
    ),
    BadInput(
        "download-destination-outputs-is-file",
        _outputs_is_a_file,
        InvalidInputError,
        "destination",
    ),
    BadInput(
        "download-destination-nul",
        lambda c: c.run().download_outputs("a\x00b"),
        InvalidInputError,
        "destination",
    ),
    BadInput(
        "files-prefix-dot-dot",
        lambda c: c.run().download_files(c.tmp / "dest", prefix="outputs/../.."),
        InvalidInputError,
        "prefix",
    ),
    BadInput(
        "files-prefix-absolute",
        lambda c: c.run().file_names(prefix="/outputs/"),
        InvalidInputError,
        "prefix",
    ),
    BadInput(
        "files-prefix-backslash",
        lambda c: c.run().file_names(prefix="outputs\\model.pt"),
        InvalidInputError,
        "prefix",
    ),
    BadInput(
        "files-timeout-zero",
        lambda c: c.run().download_files(c.tmp / "dest", timeout=0),
        InvalidInputError,
        "timeout",
    ),
    BadInput(
        "wait-show-output-str",
        lambda c: c.run().wait(show_output="yes"),  # type: ignore[arg-type]
        InvalidInputError,
        "show_output",
    ),
    BadInput(
        "download-destination-empty",
        lambda c: c.run().download_outputs(""),
        InvalidInputError,
        "destination",
    ),
    BadInput(
        "download-destination-none",
        lambda c: c.run().download_outputs(None),  # type: ignore[arg-type]
        InvalidInputError,
        "destination",
    ),
    BadInput(
        "get-run-empty-id", lambda c: mlboot.get_run(c.workspace, ""), InvalidInputError, "run_id"
    ),
    BadInput(
        "get-run-padded-id",
        lambda c: mlboot.get_run(c.workspace, " run-1 "),
        InvalidInputError,
        "run_id",
    ),
    BadInput(
        "get-run-int-id",
        lambda c: mlboot.get_run(c.workspace, 7),
        InvalidInputError,  # type: ignore[arg-type]
        "run_id",
    ),
    BadInput(
        "get-run-not-workspace",
        lambda _: mlboot.get_run("ws", "run-1"),  # type: ignore[arg-type]
        InvalidInputError,
        "workspace",
    ),
]


def test_the_registry_holds_at_least_forty_distinct_bad_inputs() -> None:
    ids = [case.id for case in REGISTRY]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 40


@pytest.fixture
def context(
    fake: FakeBackend, workspace: mlboot.Workspace, tmp_path: Path, source_dir: Path
) -> Context:
    return Context(fake, workspace, tmp_path, source_dir)


@pytest.mark.parametrize("case", REGISTRY, ids=lambda case: case.id)
def test_bad_input_is_refused_before_anything_remote(case: BadInput, context: Context) -> None:
    LEDGER.bad_input(case.id, handled=False)
    with pytest.raises(case.error) as info:
        case.attempt(context)
    assert type(info.value) is case.error
    assert case.names in str(info.value)
    if isinstance(info.value, InvalidInputError):
        assert info.value.field == case.names
    operations = [call.operation for call in context.fake.calls]
    # A new cluster's naming rules apply only once the lookup said "no such cluster".
    assert operations == (["get_compute"] if case.lookup else [])
    LEDGER.bad_input(case.id, handled=True, lookup=case.lookup)


def test_a_utf8_bom_is_tolerated_not_refused(context: Context) -> None:
    path = context.config(b"\xef\xbb\xbf" + context.keys().read_bytes(), "bom.json")
    assert context.load(path).name == "ws-rel"
    assert [call.operation for call in context.fake.calls] == ["get_workspace"]


# -- the command line ------------------------------------------------------------------------


def _cli(case_id: str, argv: list[str], names: str) -> object:
    """A command line refused with the bad-input exit code and a message containing ``names``."""
    return pytest.param(case_id, argv, ExitCode.BAD_INPUT, names, id=case_id)


CLI_CASES = [
    _cli(
        "cli-missing-config",
        ["runs", "show", "run-1", "--config", "{tmp}/none"],
        "none does not exist",
    ),
    _cli("cli-malformed-config", ["runs", "show", "run-1", "--config", "{bad}"], "not valid JSON"),
    _cli(
        "cli-max-nodes-not-int",
        [
            "compute",
            "ensure",
            "gpu",
            "--vm-size",
            "Standard_DS3_v2",
            "--max-nodes",
            "many",
            "--config",
            "{good}",
        ],
        "--max-nodes",
    ),
    _cli("cli-unknown-command", ["launch", "--config", "{good}"], "launch"),
    _cli(
        "cli-subscription-not-guid",
        ["runs", "show", "run-1", "--config", "{guid}"],
        "subscription_id",
    ),
]


@pytest.mark.parametrize(("case_id", "argv", "code", "names"), CLI_CASES)
def test_cli_bad_input_is_one_line_and_a_bad_input_exit_code(
    *,
    case_id: str,
    argv: list[str],
    code: ExitCode,
    names: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    LEDGER.bad_input(case_id, handled=False)
    fake = FakeBackend()
    with use_backend(fake):
        bad = tmp_path / "bad.json"
        bad.write_text("{oops", encoding="utf-8")
        good = tmp_path / "good.json"
        good.write_text(
            json.dumps({"subscription_id": GUID, "resource_group": "rg", "workspace_name": "ws-a"}),
            encoding="utf-8",
        )
        guid = tmp_path / "guid.json"
        guid.write_text(
            json.dumps({"subscription_id": "x", "resource_group": "rg", "workspace_name": "ws-a"}),
            encoding="utf-8",
        )
        filled = [a.format(tmp=tmp_path, bad=bad, good=good, guid=guid) for a in argv]
        assert main(filled) == code
        out, err = capsys.readouterr()
        assert LEDGER.scan(out + err, where=case_id) == []
        lines = err.splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("mlboot: error: ")
        assert names in lines[0]
        assert "Traceback" not in err
        assert fake.calls == []
        LEDGER.bad_input(case_id, handled=True)


def test_environment_overrides_are_validated_too(
    context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    LEDGER.bad_input("env-subscription-not-guid", handled=False)
    monkeypatch.setenv("MLBOOT_SUBSCRIPTION_ID", "not-a-guid")
    with pytest.raises(ConfigError) as info:
        context.load(context.keys())
    assert type(info.value) is ConfigError
    assert "subscription_id" in str(info.value)
    assert "MLBOOT_SUBSCRIPTION_ID" in str(info.value)
    assert context.fake.calls == []
    assert os.environ["MLBOOT_SUBSCRIPTION_ID"] == "not-a-guid"
    LEDGER.bad_input("env-subscription-not-guid", handled=True)
