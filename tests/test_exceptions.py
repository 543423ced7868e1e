"""The error hierarchy: one root, and the builtin a caller would naturally catch."""

from __future__ import annotations

import pytest

from mlboot import exceptions as e


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (e.ConfigNotFoundError("x"), FileNotFoundError),
        (e.ConfigNotFoundError("x"), ValueError),
        (e.ConfigError("x"), ValueError),
        (e.InvalidInputError("f", 1, "rule", "fix"), ValueError),
        (e.AuthenticationError("x"), PermissionError),
        (e.PermissionDeniedError("x"), PermissionError),
        (e.WorkspaceNotFoundError("x"), LookupError),
        (e.AbandonedRunError("x", path="/p"), LookupError),
        (e.ServiceError("x"), RuntimeError),
        (e.NetworkError("x"), ConnectionError),
        (e.ComputeMismatchError("x", {}), ValueError),
        (e.ComputeKindError("x", {}), ValueError),
        (e.ComputeProvisioningError("x"), RuntimeError),
        (e.SnapshotTooLargeError("x"), ValueError),
        (e.SnapshotLinkError("f", 1, "rule", "fix", link="a", target="/b"), ValueError),
        (e.RunFailedError("x", run_id="r"), RuntimeError),
        (e.WaitTimeoutError("x"), TimeoutError),
        (e.SdkObjectUnavailableError("x"), NotImplementedError),
    ],
)
def test_every_error_is_an_mlboot_error_and_the_natural_builtin(
    error: Exception, builtin: type[Exception]
) -> None:
    assert isinstance(error, e.MlbootError)
    assert isinstance(error, builtin)


def test_every_exported_error_derives_from_the_root() -> None:
    for name in e.__all__:
        cls = getattr(e, name)
        if issubclass(cls, Warning):
            continue
        assert issubclass(cls, e.MlbootError), name
    assert e.__all__ == sorted(e.__all__)


def test_the_warning_category_is_a_user_warning_python_shows_by_default() -> None:
    assert issubclass(e.MlbootWarning, UserWarning)
    assert not issubclass(e.MlbootWarning, e.MlbootError)


def test_local_storage_error_is_an_os_error_with_the_system_s_errno_and_path() -> None:
    import errno  # noqa: PLC0415  (only this test needs it)

    error = e.LocalStorageError(
        "The disk is full writing /data/x", errno=errno.ENOSPC, filename="/data/x"
    )
    assert isinstance(error, OSError)
    assert (error.errno, error.filename) == (errno.ENOSPC, "/data/x")
    assert str(error) == "The disk is full writing /data/x"


def test_invalid_input_message_names_field_value_rule_and_fix() -> None:
    error = e.InvalidInputError("max_nodes", -1, "it must be at least 1", "Pass max_nodes=1.")
    assert str(error) == "max_nodes=-1 is invalid: it must be at least 1. Pass max_nodes=1."
    assert (error.field, error.value) == ("max_nodes", -1)


def test_os_error_based_classes_keep_their_message_as_str() -> None:
    assert str(e.NetworkError("refused at 127.0.0.1:9")) == "refused at 127.0.0.1:9"
    assert str(e.ConfigNotFoundError("no config", searched=["a"])) == "no config"


def test_throttled_and_network_errors_are_transient() -> None:
    assert e.ThrottledError("x", retry_after=3).transient
    assert e.ThrottledError("x", retry_after=3).retry_after == 3
    assert e.NetworkError("x").transient
    assert not e.ConflictError("x").transient
