"""Ctrl-C that always stops a run, even when Python drops the KeyboardInterrupt.

Python runs a signal handler in whatever code the main thread is executing when the signal
arrives. If that is a finaliser (a lock's or file's ``__del__``, a weakref callback), the
handler's ``KeyboardInterrupt`` is printed as "Exception ignored in ..." and discarded, and the
run carries on to the end as if Ctrl-C had never been pressed. :class:`StopOnInterrupt` also
records the request, and the runner checks it between batches, so the run stops at the next
batch boundary instead (every finished batch is already in the answer cache).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType


class StopOnInterrupt:
    """Context manager: while active (main thread, SIGINT at Python's default handler), SIGINT
    raises ``KeyboardInterrupt`` as usual and is remembered; :meth:`check` raises it again."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: object = None
        self._installed = False

    def __enter__(self) -> "StopOnInterrupt":
        self.requested = False
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        raise KeyboardInterrupt

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed while active (even if dropped)."""
        if self.requested:
            raise KeyboardInterrupt

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]
            self._installed = False
