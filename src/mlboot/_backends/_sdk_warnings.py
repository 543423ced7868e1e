"""The SDKs' own deprecation warnings, kept from turning into failures of mlboot's calls.

azureml-core and azure-ai-ml call APIs that newer Pythons and libraries deprecate:
``datetime.utcnow()`` (Python 3.12+) in azureml-core's dataset logger and in azure-ai-ml,
``Thread.setDaemon`` in azureml-core's metrics timer, its own ``FileType`` enum (on import), the
``load`` functions of the ruamel.yaml azureml-core vendors, ``imghdr`` (deprecated in 3.11; on
3.13 a backport that warns), and marshmallow 3 features azure-ai-ml's schemas use.  A program
that runs with warnings as errors (``python -W error``, pytest's ``filterwarnings = ["error"]``)
would otherwise see each as an exception raised in the middle of an SDK call (an output built, a
run canceled), which nothing in the program causes and nothing it changes can fix.

:func:`ignore_sdk_deprecations` makes sure one narrow filter for each comes first in the filter
list: the warning's category, its message, and a module inside the SDK that raises it.  Every
other warning, the program's own and any other of the SDKs', still follows the program's filters.
They come first, ahead of filters the program adds later (``warnings.simplefilter("error")``, or
the ``"always"`` of ``pytest.warns``, which would record them and raise them again once it ends),
since no setting of the program's is meant for them.  The filters are put in place rather than
scoped with ``warnings.catch_warnings``, which swaps the process-wide filter list and, with calls
on several threads, would drop filters other threads set meanwhile (or leave its own behind).
"""

from __future__ import annotations

import threading
import warnings
from typing import cast

__all__ = ["SDK_DEPRECATIONS", "ignore_sdk_deprecations"]

# (category, message, module): each a regular expression as ``warnings.filterwarnings`` takes.
SDK_DEPRECATIONS: tuple[tuple[type[Warning], str, str], ...] = (
    (DeprecationWarning, r"datetime\.datetime\.utcnow\(\) is deprecated", r"azureml\."),
    (DeprecationWarning, r"datetime\.datetime\.utcnow\(\) is deprecated", r"azure\.ai\.ml(\.|$)"),
    (DeprecationWarning, r"setDaemon\(\) is deprecated", r"azureml\."),
    # Raised while Python compiles the SDKs' sources where no bytecode was cached (regex strings
    # without r""): a SyntaxWarning (a DeprecationWarning before 3.12) whose "module" is the
    # source file's path.
    (SyntaxWarning, r"invalid escape sequence", r".*[/\\]azure(ml|[/\\]ai[/\\]ml)[/\\]"),
    (DeprecationWarning, r"invalid escape sequence", r".*[/\\]azure(ml|[/\\]ai[/\\]ml)[/\\]"),
    # Raised once, while azureml.data loads (the SDK's own deprecated enum's class body).
    (DeprecationWarning, r"FileType Enum is Deprecated", r"azureml\."),
    (DeprecationWarning, r"'imghdr' is deprecated", r"azureml\."),
    # Python 3.13+: the standard-imghdr backport azureml-core's ``import imghdr`` is served by.
    (DeprecationWarning, r"imghdr was removed in Python 3\.13", r"azureml\."),
    (PendingDeprecationWarning, r"\s*\w+ will be removed, use", r"azureml\."),
    # marshmallow's RemovedInMarshmallow4Warning, raised in marshmallow itself while azure-ai-ml
    # loads its schemas, or attributed to azure-ai-ml's schema code.
    (DeprecationWarning, r"", r"marshmallow(\.|$)"),
    (
        DeprecationWarning,
        (
            r"(The .context. parameter is deprecated|The .ordered. .class Meta. option is "
            r"deprecated|.Number. field should not be instantiated|Passing field metadata as "
            r"keyword arguments is deprecated|The 'default' argument to fields is deprecated)"
        ),
        r"azure\.ai\.ml(\.|$)",
    ),
)

_lock = threading.Lock()
_WANTED: list[tuple[object, ...]] = [
    ("ignore", message, category, module) for category, message, module in SDK_DEPRECATIONS
]


def _key(entry: tuple[object, ...]) -> tuple[object, ...]:
    action, message, category, module, _lineno = entry
    # The warnings module keeps an empty pattern as None and compiles the others.
    return (
        action,
        getattr(message, "pattern", message) or "",
        category,
        getattr(module, "pattern", module) or "",
    )


def ignore_sdk_deprecations() -> None:
    """Put a filter ignoring each of :data:`SDK_DEPRECATIONS` first in the filter list.

    Cheap enough to call before every SDK call (it compares the first entries), which keeps the
    filters in place although ``warnings.catch_warnings`` blocks (pytest runs each test in one)
    restore the list they saw.
    """
    with _lock:
        if [_key(entry) for entry in warnings.filters[: len(_WANTED)]] == _WANTED:
            return
        wanted = set(_WANTED)
        # A list (typeshed types it a Sequence); filterwarnings below marks it changed.
        filters = cast("list[tuple[object, ...]]", warnings.filters)
        filters[:] = [entry for entry in filters if _key(entry) not in wanted]
        for category, message, module in reversed(SDK_DEPRECATIONS):
            warnings.filterwarnings("ignore", message, category, module)  # inserts at the front
