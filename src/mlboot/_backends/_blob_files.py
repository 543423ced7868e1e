"""What both Azure ML backends do alike with a blob container: upload many files, checked.

azureml-core (its vendored storage client) and azure-ai-ml (azure-storage-blob) hand out
container clients of the same shape: ``get_blob_client(name).upload_blob(...)``.  The upload of
a local input's files and the target of a run file being downloaded are decided here once, so
that both backends send and write the same.  It imports no SDK.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from pathlib import Path
from typing import Any

from mlboot._deadline import carried
from mlboot._links import escaping_name
from mlboot.exceptions import ServiceError

__all__ = ["UPLOAD_WORKERS", "run_file_target", "upload_files"]

UPLOAD_WORKERS = 8
"""How many files are sent at once: a bounded pool, as the SDKs' own uploads use."""


def upload_files(
    container: Any,
    target_path: str,
    files: Sequence[tuple[Path, str]],
    translated: Callable[[], contextlib.AbstractContextManager[None]],
) -> None:
    """One single-shot ``PUT`` per file (overwriting), from a bounded pool.

    The first failure raises, translated by the caller's ``translated()`` block, and the
    ``PUT`` requests not yet started are not sent; every file is sent, or the call raises
    (azureml-core's own ``upload`` logs a failed ``PUT`` and returns as if all went well).  The
    calling thread's deadline goes with each ``PUT`` to its worker thread.
    """
    prefix = target_path.strip("/")

    def put(local: Path, name: str) -> None:
        blob = f"{prefix}/{name}" if prefix else name
        with local.open("rb") as handle:
            container.get_blob_client(blob).upload_blob(
                handle, blob_type="BlockBlob", overwrite=True
            )

    if not files:
        return
    pool = ThreadPoolExecutor(
        max_workers=min(UPLOAD_WORKERS, len(files)), thread_name_prefix="mlboot-upload"
    )
    try:
        with translated():
            futures = [pool.submit(carried(put), local, name) for local, name in files]
            done, _pending = wait_for_futures(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                if future in done and future.exception() is not None:
                    future.result()  # raises the first failure, in the files' order
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_file_target(destination: Path, name: str, *, fix: str) -> Path:
    """Where the run's file ``name`` is written below ``destination``; refused if it leads out.

    ``fix`` says how to fetch such a file another way (the backend's own SDK call).
    """
    target = destination / name
    why = escaping_name(name)
    if why is None and not target.resolve().is_relative_to(destination.resolve()):
        why = "it leads out of the folder"
    if why is not None:
        raise ServiceError(
            f"the run has a file named {name!r}, which would be written outside "
            f"{destination} ({why}); nothing was downloaded. Fix: {fix}"
        )
    return target
