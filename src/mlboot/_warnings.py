"""mlboot's warnings that change an outcome, attributed to the caller's line, not mlboot's."""

from __future__ import annotations

import sys
import warnings
from types import FrameType

from mlboot.exceptions import MlbootWarning

__all__ = ["warn"]


def warn(message: str) -> None:
    """Issue ``message`` as an :class:`~mlboot.exceptions.MlbootWarning`.

    Python shows it by default, once per calling line, even in a script that never configured
    logging, and users can filter it by category.  It is attributed to the first frame outside
    the mlboot package, so the warning points at the user's own call.
    """
    level = 2  # the caller of warn(); one more for each mlboot frame above it
    # The stdlib's own way to walk the caller's stack:
    frame: FrameType | None = sys._getframe(1)  # noqa: SLF001
    while frame is not None and _in_mlboot(frame.f_globals.get("__name__")):
        frame = frame.f_back
        level += 1
    warnings.warn(message, MlbootWarning, stacklevel=level)


def _in_mlboot(module: object) -> bool:
    return isinstance(module, str) and (module == "mlboot" or module.startswith("mlboot."))
