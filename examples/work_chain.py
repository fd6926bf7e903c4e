"""A WorkManager chain: two parallel downloads -> merge -> upload, driven step by step.

It goes through a retry with exponential backoff, a failure that fails the rest of the chain,
and a unique work APPENDed onto the failed chain (born FAILED, as WorkManager does), printing
every work's state after each step.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from lifecyclekit import TransitionRejected
from lifecyclekit.machines import (
    Constraints,
    WorkGraph,
    WorkRequest,
    WorkResult,
)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def main() -> None:
    clock = Clock()
    graph = WorkGraph(clock=clock)
    photos = WorkRequest(worker="DownloadPhotos", tags={"sync"})
    videos = WorkRequest(worker="DownloadVideos", tags={"sync"})
    merge = WorkRequest(worker="MergeAlbum", input={"album": "holidays"})
    upload = WorkRequest(worker="UploadAlbum", constraints=Constraints(network_type="UNMETERED"))
    graph.begin_unique_work("album", "REPLACE", photos, videos).then(merge).then(upload).enqueue()
    late = WorkRequest(worker="Notify")
    works = [photos, videos, merge, upload, late]

    def show(step: str) -> None:
        cells = []
        for request in works:
            info = graph.info(request.id)
            state = info.state.value if info else "-"
            cells.append(f"{state:<10}")
        print(f"{clock.now:%H:%M:%S}  {step:<44} {' '.join(cells)}")

    header = " ".join(f"{r.worker[:10]:<10}" for r in works)
    print(f"{'time':<9} {'step':<44} {header}")
    show("enqueued: downloads ready, the rest BLOCKED")

    graph.start(photos.id)
    graph.finish(photos.id, WorkResult.success({"photos": 120}))
    show("photos succeeded (merge still waits)")

    graph.start(videos.id)
    graph.finish(videos.id, WorkResult.retry())
    retry_at = graph.info(videos.id).next_schedule_time  # type: ignore[union-attr]
    show(f"videos: retry, backoff until {retry_at:%H:%M:%S}")
    try:
        graph.start(videos.id)
    except TransitionRejected as refusal:
        print(f"          refused: {refusal}")
    clock.now += timedelta(seconds=30)
    graph.start(videos.id)
    graph.finish(videos.id, WorkResult.success({"videos": 8}))
    show("videos succeeded after 30 s: merge unblocked")
    print(f"          merge input: {graph.input_for(merge.id)}")

    graph.start(merge.id)
    graph.finish(merge.id, WorkResult.failure({"error": "disk full"}))
    show("merge failed: upload fails with it")

    cause = graph.work(upload.id).history[-1]
    culprit = graph.work(UUID(cause.payload["prerequisite"])).context.worker  # type: ignore[index]
    print(f"          upload's last record: {cause.event}, caused by {culprit}")

    graph.enqueue_unique_work("album", "APPEND", late)
    show("Notify APPENDed to the failed chain: FAILED")
    print(
        f"          Notify waits on the chain's leaves: {len(graph.prerequisites(late.id))} work"
    )


if __name__ == "__main__":
    main()
