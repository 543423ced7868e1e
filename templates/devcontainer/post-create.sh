#!/usr/bin/env bash
# postCreateCommand: runs once, as the container's user, in the repository folder, after the
# container is created.  Installs the repository's own requirements into the image's /opt/venv.
set -euo pipefail

if [ -f requirements.txt ]; then
    uv pip install --requirement requirements.txt
fi
if [ -f pyproject.toml ]; then
    uv pip install --editable .
fi

python -c 'import azureml.core, mlboot; print("azureml-core", azureml.core.VERSION, "and mlboot", mlboot.__version__)'
echo "Next: 'az login --use-device-code' (once: the login is kept in a volume across rebuilds)."
