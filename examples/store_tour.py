"""The tour: lifecycles in the embedded store, driven with the `lifecyclekit` command.

Each step prints the command line and runs it in-process (the same code `lifecyclekit` runs
from the shell) against a fresh SQLite file, ``lifecyclekit-tour.db`` in a temporary folder.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path

from lifecyclekit.cli import main


def lifecyclekit(command: str) -> None:
    print(f"\n$ lifecyclekit {command}")
    try:
        main.main(shlex.split(command), prog_name="lifecyclekit", standalone_mode=False)
    except SystemExit as exit_:
        print(f"(exit {exit_.code})")


def tour() -> None:
    lifecyclekit("new dataflow-job --id orders --set job_type=JOB_TYPE_STREAMING")
    lifecyclekit('send orders observe --data \'{"state": "JOB_STATE_PENDING"}\'')
    lifecyclekit('send orders observe --data \'{"state": "JOB_STATE_RUNNING"}\' --key poll-2')
    lifecyclekit('send orders observe --data \'{"state": "JOB_STATE_RUNNING"}\' --key poll-2')
    lifecyclekit('send orders request --data \'{"requested_state": "JOB_STATE_DRAINED"}\'')
    lifecyclekit('send orders observe --data \'{"state": "JOB_STATE_RUNNING"}\'')
    lifecyclekit('send orders observe --data \'{"state": "JOB_STATE_DRAINED"}\'')
    lifecyclekit("history orders")

    lifecyclekit("new one-time-work --id upload --set worker=Upload "
                 "--context '{\"constraints\": {\"network_type\": \"UNMETERED\"}}'")  # fmt: skip
    lifecyclekit('send upload start --data \'{"conditions": {"unmetered": false}}\'')
    lifecyclekit("send upload start")
    lifecyclekit('send upload finish --data \'{"outcome": "success", "output": {"n": 3}}\'')
    lifecyclekit("history upload")
    lifecyclekit("ls")


def main_() -> None:
    with tempfile.TemporaryDirectory() as folder:
        os.environ["LIFECYCLEKIT_STORE"] = f"sqlite:///{Path(folder) / 'lifecyclekit-tour.db'}"
        tour()


if __name__ == "__main__":
    main_()
