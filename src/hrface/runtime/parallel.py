"""Analysing many photos at once on a multi-core CPU: several photos in flight, results in input order.

One photo through the default pipeline keeps 2 cores only partly busy: reading and decoding the file, resizing,
decoding the detections and the heatmaps are single-threaded NumPy / OpenCV work, and ONNX Runtime's
intra-op threads wait on each other within every layer. Photos analysed by several worker threads at once, each
session with one intra-op thread, keep the cores busy instead (ONNX Runtime and OpenCV release the GIL, and
one session serves several threads). Measured on a 2-core CPU on 60 HELEN photos: 8.4–10.2 photos/s one at a
time with 2 intra-op threads against 12.4–13.3 with 2 workers of one thread each (README, "Performance").
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def usable_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], workers: int, ahead: int | None = None
) -> Iterator[tuple[T, R | Exception]]:
    """``(item, fn(item))`` for each item, in input order, with ``workers`` calls running at once (1: in this
    thread, one at a time). An exception raised by ``fn`` is returned in place of its result, so one bad item
    ends nothing. At most ``ahead`` items (default 2 × workers) are started before their turn comes; when the
    consumer stops early, the items not yet started are cancelled and the running ones are waited for."""
    if workers <= 1:
        for item in items:
            yield item, _call(fn, item)
        return
    pending: deque[tuple[T, Future]] = deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hrface-worker")
    try:
        for item in items:
            pending.append((item, pool.submit(_call, fn, item)))
            if len(pending) >= (ahead or 2 * workers):
                first, future = pending.popleft()
                yield first, future.result()
        while pending:
            first, future = pending.popleft()
            yield first, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _call(fn: Callable[[T], R], item: T) -> R | Exception:
    try:
        return fn(item)
    except Exception as exc:  # returned to the consumer, which records it; the other items go on
        return exc
