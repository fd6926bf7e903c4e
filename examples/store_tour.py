"""The tour: lifecycles in the embedded store, driven with the `lifecyclekit` command, and a
chain of work kept in the same store across a restart.

Each step prints the command line and runs it in-process (the same code `lifecyclekit` runs
from the shell) against a fresh SQLite file, ``lifecyclekit-tour.db`` in a temporary folder.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path

from lifecyclekit.cli import main
from lifecyclekit.machines import WorkGraph, WorkRequest, WorkResult
from lifecyclekit.store import open_store


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
    lifecyclekit(
        'send orders request --data \'{"requested_state": "JOB_STATE_DRAINED"}\' '
        "--actor ops --reason 'release 42'"
    )
    lifecyclekit('send orders observe --data \'{"state": "JOB_STATE_RUNNING"}\'')
    lifecyclekit('send orders observe --data \'{"state": "JOB_STATE_DRAINED"}\'')
    lifecyclekit("history orders")

    lifecyclekit("new one-time-work --id upload --set worker=Upload "
                 "--context '{\"constraints\": {\"network_type\": \"UNMETERED\"}}'")  # fmt: skip
    lifecyclekit('send upload start --data \'{"conditions": {"unmetered": false}}\'')
    lifecyclekit("send upload start")
    lifecyclekit('send upload finish --data \'{"outcome": "success", "output": {"n": 3}}\'')
    lifecyclekit("history upload")
    lifecyclekit("watch --once --consumer mailer")  # the change feed, in commit order
    chain_tour()
    lifecyclekit("ls")


def show(graph: WorkGraph, works: list[WorkRequest], step: str) -> None:
    states = " ".join(f"{graph.info(w.id).state.value:<10}" for w in works)  # type: ignore[union-attr]
    print(f"  {step:<44} {states}")


def chain_tour() -> None:
    """A WorkManager chain kept in the same store, driven across a simulated restart."""
    url = os.environ["LIFECYCLEKIT_STORE"]
    print("\n# A chain of work in the same store: WorkGraph(store=open_store(url))")
    photos, videos = WorkRequest(worker="DownloadPhotos"), WorkRequest(worker="DownloadVideos")
    merge, upload = WorkRequest(worker="MergeAlbum"), WorkRequest(worker="UploadAlbum")
    works = [photos, videos, merge, upload]
    print(f"  {'step':<44} " + " ".join(f"{w.worker[:10]:<10}" for w in works))
    with open_store(url) as store:
        graph = WorkGraph(store=store)
        graph.begin_with(photos, videos).then(merge).then(upload).enqueue()
        show(graph, works, "enqueued")
        for download, output in ((photos, {"photos": 120}), (videos, {"videos": 8})):
            graph.start(download.id)
            graph.finish(download.id, WorkResult.success(output))
        show(graph, works, "downloads succeeded: merge unblocked")
    print("  (the process ends; a new one opens the store)")
    with open_store(url) as store:
        graph = WorkGraph(store=store)
        print(f"  runnable now: {[graph.work(i).context.worker for i in graph.runnable()]}")
        print(f"  merge input:  {graph.input_for(merge.id)}")
        graph.start(merge.id)
        graph.finish(merge.id, WorkResult.failure({"error": "disk full"}))
        show(graph, works, "merge failed: the upload fails with it")
    print("  (a work of the graph is driven through the graph, not by a bare send)")
    lifecyclekit(f"send {photos.id} cancel")


def main_() -> None:
    with tempfile.TemporaryDirectory() as folder:
        os.environ["LIFECYCLEKIT_STORE"] = f"sqlite:///{Path(folder) / 'lifecyclekit-tour.db'}"
        tour()


if __name__ == "__main__":
    main_()
