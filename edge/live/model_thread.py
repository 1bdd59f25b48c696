"""The crop and the model on their own thread: frame n is cropped and scored while frame n+1 is found.

ONNX Runtime releases Python's GIL while it runs, so on a two-core board the model of one frame and
the detection and region depth of the next can overlap. The crop goes with the model when the caller
prepares with ``crop=False`` (the bench does): it needs only the frame and the face, and with it the
two threads' shares of a face-first frame come out about even (docs/face-first-speed.md). The price is a
frame of latency: frame n is decided when frame n+1 has been prepared. ``edgefas bench --mode
pipelined`` measures whether that pays (docs/face-first.md); the live loop decides each frame before
taking the next, because at a camera's 30 fps the face-first path has the time and the extra
frame's wait would count against the policy's latency budget.

Not thread-safe itself: one caller, in frame order; the pipeline's policy, tracker and finder are
only ever touched by that caller (``prepare``, ``finish``), the runner only by the model thread.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from edge.live.pipeline import FrameResult, Inferred, LivePipeline, Prepared


class ModelThread:
    """Runs :meth:`LivePipeline.infer` one frame behind the caller's :meth:`LivePipeline.prepare`."""

    def __init__(self, pipeline: LivePipeline) -> None:
        self.pipeline = pipeline
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="edgefas-model")
        self._pending: tuple[Prepared, Future[Inferred]] | None = None

    def submit(self, prepared: Prepared) -> FrameResult | None:
        """Start the model on ``prepared``; return the previous frame's decision (None for the first)."""
        previous = self.drain()
        self._pending = (prepared, self._pool.submit(self.pipeline.infer, prepared))
        return previous

    def drain(self) -> FrameResult | None:
        """Wait for the frame in flight and decide on it (None when there is none)."""
        if self._pending is None:
            return None
        prepared, future = self._pending
        self._pending = None
        return self.pipeline.finish(prepared, future.result())

    def close(self) -> None:
        self._pool.shutdown(wait=True)
