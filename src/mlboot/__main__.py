"""``python -m mlboot``: the ``mlboot`` command (see :mod:`mlboot._cli`)."""

from __future__ import annotations

from mlboot._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
