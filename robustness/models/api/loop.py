"""One background event loop for all API adapters, so their list methods work from any code.

The adapter methods are synchronous (the ``ModelAdapter`` interface); they submit their batch
coroutine to this loop, which runs in a daemon thread, and wait for it. That works from plain
scripts, from worker threads and from code already inside a running loop (a notebook): no
``asyncio.run`` is nested. SDK clients live on this loop for the life of the adapter, so HTTP
connections are reused across batches. After a ``fork`` a child gets a fresh loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, Coroutine, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_pid: int | None = None


def background_loop() -> asyncio.AbstractEventLoop:
    """The shared API loop, started on first use (and again in a forked child)."""
    global _loop, _thread, _pid
    with _lock:
        if _loop is None or _pid != os.getpid() or not (_thread and _thread.is_alive()):
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=_serve, args=(loop,), daemon=True,
                                      name="robustness-api-loop")
            thread.start()
            _loop, _thread, _pid = loop, thread, os.getpid()
        return _loop


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


def on_loop_thread() -> bool:
    return _thread is not None and threading.current_thread() is _thread


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the API loop and return its result; Ctrl-C cancels it cleanly."""
    if on_loop_thread():
        coro.close()
        raise RuntimeError("an API adapter method was called from inside the API event loop")
    future = asyncio.run_coroutine_threadsafe(coro, background_loop())
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise
