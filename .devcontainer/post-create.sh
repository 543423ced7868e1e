#!/usr/bin/env bash
# postCreateCommand of mlboot's dev container: runs once, as the container's user, in the
# repository folder, after the container is created.
set -euo pipefail

# mlboot, editable, with every dependency group of pyproject.toml, into the image's /opt/venv.
# The tools pinned in the image already satisfy their groups and stay as they are.
uv pip install --editable . \
    --group tests \
    --group integration \
    --group typecheck \
    --group lint \
    --group docs

python -c 'import mlboot; print("mlboot", mlboot.__version__, "is installed (editable)")'
echo "Next: 'az login --use-device-code' (kept across rebuilds), then 'nox' or 'pytest'."
