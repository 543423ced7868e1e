"""The ``${{inputs.<name>}}`` / ``${{outputs.<name>}}`` placeholders a request's arguments carry.

:class:`~mlboot.backend.RunRequest` keeps an input or output given among the arguments as this
text (azure-ai-ml's command syntax); each Azure ML backend finds them with :data:`PLACEHOLDER`
and puts its own form in their place.  It imports no SDK.
"""

from __future__ import annotations

import re

from mlboot.exceptions import InvalidInputError

__all__ = ["PLACEHOLDER", "unknown_placeholder"]

PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
"""A placeholder; group 1 is ``inputs`` or ``outputs``, group 2 the name."""


def unknown_placeholder(argument: str, match: re.Match[str]) -> InvalidInputError:
    """The error for a placeholder naming no input or output of the run.

    Checked above the seam (an unknown name is refused before anything remote); a request built
    by hand can still bring one to a backend.
    """
    kind = "input" if match.group(1) == "inputs" else "output"
    return InvalidInputError(
        "arguments",
        argument,
        f"{match.group(0)} names no {kind} of the run",
        f"add a {kind} named {match.group(2)!r}, or correct the name",
    )
