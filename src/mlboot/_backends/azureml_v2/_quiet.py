"""azure-ai-ml prints one line of its own on every code upload; mlboot prints nothing unasked.

Its storage helpers (``azure/ai/ml/_artifacts/_blob_storage_helper.py`` and
``_gen2_storage_helper.py``) end each upload with ``print(Fore.RESET + "\\n", file=sys.stderr)``,
whatever ``show_progress`` says: a colour reset and a blank line on the caller's stderr.  The
modules' own ``print`` is replaced by one that drops exactly that call and passes every other
through, so nothing process-wide changes (``sys.stderr`` is not swapped, which other threads
would feel).
"""

from __future__ import annotations

import builtins
import importlib
import sys
from typing import Any

_HELPERS = (
    "azure.ai.ml._artifacts._blob_storage_helper",
    "azure.ai.ml._artifacts._gen2_storage_helper",
)  # the same two as _azureml_v2.UPLOAD_HELPERS (this module imports nothing of it)
_MARK = "_mlboot_quiet_upload"


def _reset_text() -> str:
    from colorama import Fore  # type: ignore[import-untyped]  # noqa: PLC0415  (azure-ai-ml's dependency; no stubs)

    return str(Fore.RESET) + "\n"


def is_upload_reset(args: tuple[object, ...], kwargs: dict[str, Any]) -> bool:
    """Whether a ``print`` call is the helpers' colour reset to stderr."""
    return args == (_reset_text(),) and kwargs.get("file") is sys.stderr and set(kwargs) <= {"file"}


def _quiet_print(*args: object, **kwargs: Any) -> None:
    if is_upload_reset(args, kwargs):
        return
    builtins.print(*args, **kwargs)  # noqa: T201  (every other print of the SDK's, as it was)


def silence_upload_reset() -> None:
    """Make the storage helpers' ``print`` skip their colour reset; idempotent."""
    for name in _HELPERS:
        try:
            module = importlib.import_module(name)
        except ImportError:  # an azure-ai-ml without this helper: nothing of it to silence
            continue
        if not getattr(module, _MARK, False):
            module.print = _quiet_print  # type: ignore[attr-defined]  # shadows builtins.print there only
            setattr(module, _MARK, True)
