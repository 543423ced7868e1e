"""One of several processes racing to get-or-create one new cluster on the emulator.

Run by ``test_reliability_faults.py`` as ``python race_child.py '<json>'``; the parent has put the
emulator's CA and a private HOME in the environment.  The child loads the workspace, says it is
ready, waits for the shared start signal (a file), then asks for the cluster at once and prints
what it got as one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the emulator package

import mlboot
from emulator import EmulatorAuth

START_SIGNAL_SECONDS = 60.0


def main(spec: dict[str, object]) -> None:
    auth = EmulatorAuth(
        resource_manager_url=str(spec["arm_url"]),
        tenant_id=str(spec["tenant_id"]),
        object_id=str(spec["object_id"]),
        subscriptions=dict(spec["subscriptions"]),  # type: ignore[call-overload]  # JSON object
    )
    workspace = mlboot.workspace_from_config(str(spec["config"]), auth=auth)
    Path(str(spec["ready"])).touch()
    go = Path(str(spec["go"]))
    deadline = time.monotonic() + START_SIGNAL_SECONDS
    while not go.exists():
        if time.monotonic() > deadline:
            sys.exit("no start signal within 60 s")
        time.sleep(0.002)
    target = mlboot.get_or_create_compute_target(
        workspace, "gpu-race", vm_size="Standard_NC6s_v3", max_nodes=2, wait=False, timeout=60
    )
    sys.stdout.write(json.dumps({"name": target.name, "vm_size": target.vm_size}) + "\n")


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
