"""The ``mlboot`` logger, the one every module of mlboot logs to.

It has a :class:`logging.NullHandler` from the moment any module that logs is imported: a
library prints nothing unless asked, and without it Python's last-resort handler would write
mlboot's warnings to stderr in a program that never configured logging.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("mlboot")
logger.addHandler(logging.NullHandler())
