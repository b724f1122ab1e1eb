"""A campaign run in its own process that kills itself with SIGKILL at a chosen moment of delivery.

`python -m tests.fault_run '<json>'` with keys directory, meta, configuration, routing, run_time and
fault: "before:<name>" (just before that file is put at the destination), "after:<name>" (just after it
landed) or "none". The run is the real pipeline over the Kit project in `directory`. With the key
`campaigns` (campaign name → meta) instead of `meta`, the project holds those campaigns
(Kit.campaigns_project) and `campaign` names the one to run; `options` adds RunOptions fields
(allow_future, force). With the key `cli` (a list of arguments) instead, the `directmail` command runs
with them, as an operator runs it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import directmail.pipeline as pipeline
from tests.runner_kit import Kit


def _kill_at(fault: str) -> None:
    when, _, target = fault.partition(":")
    real_open = pipeline.open_destination

    def open_destination(*args, **kwargs):
        destination = real_open(*args, **kwargs)
        real_put = destination.put

        def put(local_path: Path, relative_name: str, before_commit=None) -> None:
            if when == "before" and relative_name == target:
                os.kill(os.getpid(), signal.SIGKILL)
            real_put(local_path, relative_name, before_commit)
            if when == "after" and relative_name == target:
                os.kill(os.getpid(), signal.SIGKILL)

        destination.put = put
        return destination

    pipeline.open_destination = open_destination


def main(spec: dict) -> None:
    if spec["fault"] != "none":
        _kill_at(spec["fault"])
    if "cli" in spec:
        from directmail.cli import app

        app(spec["cli"], prog_name="directmail")
        return
    kit = Kit(Path(spec["directory"]))
    if "campaigns" in spec:
        project = kit.campaigns_project(spec["campaigns"], spec["configuration"], routing=spec.get("routing"))
        kit.run(project, spec["campaign"], run_time=spec["run_time"], **spec.get("options", {}))
        return
    project = kit.project(spec["meta"], spec["configuration"], routing=spec.get("routing"))
    kit.run(project, run_time=spec["run_time"])


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
