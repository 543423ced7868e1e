"""Sample projects that ``tests/test_pytest_plugin.py`` copies and runs with ``pytester``.

``training_repo/`` is a user's repository, run as its owner would run it (its own
``pyproject.toml``, its own ``tests/``); mlboot's own test run must not collect it.
"""

collect_ignore_glob = ["*"]
