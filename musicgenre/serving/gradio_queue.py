"""Let the app's request queue sleep while nobody is using it: Gradio's polls for work every millisecond on Linux.

Gradio 6's ``Queue.start_processing`` looks for new events every ``sleep_when_free`` seconds (0.001 on Linux, 0.05
on Windows), and its progress loop every ``progress_update_sleep_when_free`` (0.01; 0.1 on Windows). That is ~1,100
wake-ups a second, which keep ~5% of a core busy in an idle app. Measured on the 2-core machine, app.py with the
bundled models, 20 s idle after start: 1.03 CPU-seconds with Gradio's Linux values, 0.14 with its Windows values
(``benchmarks/startup.py`` records it as ``idle_cpu_percent``). On a shared Space, or in the test suite, where the
app stays up beside other work, that CPU time is taken from the rest. The cost is a request waiting up to 50 ms more
before it starts, against ~1 s of analysis. Gradio has no public setting for this, so the attributes are set on the
queue that ``Blocks.queue`` made, if it has them.
"""

from __future__ import annotations

POLL_SECONDS = 0.05  # Gradio's own value on Windows
PROGRESS_SECONDS = 0.1  # likewise


def quiet_idle_queue(demo, poll_seconds: float = POLL_SECONDS, progress_seconds: float = PROGRESS_SECONDS) -> bool:
    """Set how often ``demo``'s queue (after ``demo.queue()``) looks for work while free. False, and nothing changed,
    if this Gradio's queue has no such attributes."""
    queue = getattr(demo, "_queue", None)
    names = ("sleep_when_free", "progress_update_sleep_when_free")
    if queue is None or not all(hasattr(queue, name) for name in names):
        return False
    queue.sleep_when_free, queue.progress_update_sleep_when_free = poll_seconds, progress_seconds
    return True
