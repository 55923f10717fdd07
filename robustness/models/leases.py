"""Claims on cache keys, so processes sharing a cache never ask the same question twice.

Before a process asks the model, it claims the batch's missing keys: a lease file in
``<cache file>.leases/`` naming the keys, its host and pid, written while holding the folder's
lock, so two processes never claim the same key. Keys another live process holds are not asked:
the process waits for their answers to appear in the cache file instead. A lease is live while
its owner refreshes its modification time (a heartbeat thread, every few seconds); a lease of a
process that died — its pid gone on this host, or no heartbeat for ``ttl_s`` on a shared file
system — is ignored, and its keys are claimed anew.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Iterable

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: claims are still written, not serialised
    fcntl = None  # type: ignore[assignment]

HOST = socket.gethostname()
_counter = itertools.count()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


class Lease:
    """This process's claim on some keys; release it once their answers are stored."""

    def __init__(self, path: Path, keys: frozenset[str], heartbeat_s: float) -> None:
        self.path, self.keys = path, keys
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(heartbeat_s,), daemon=True,
                                        name=f"lease-{path.name}")
        self._thread.start()

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                os.utime(self.path)
            except FileNotFoundError:
                return

    def release(self) -> None:
        self._stop.set()
        self.path.unlink(missing_ok=True)


class LeaseBoard:
    """The leases of one cache file."""

    def __init__(self, cache_file: Path, ttl_s: float = 30.0) -> None:
        self.folder = cache_file.with_name(cache_file.name + ".leases")
        self.ttl_s = ttl_s

    def _live(self, path: Path, now: float) -> frozenset[str]:
        """The keys a live lease of another process holds (empty for a dead or unreadable one)."""
        try:
            age = now - path.stat().st_mtime
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return frozenset()
        if info.get("host") == HOST and info.get("pid") == os.getpid():
            return frozenset()  # our own claims: never wait for ourselves
        dead = (info.get("host") == HOST and not _pid_alive(int(info.get("pid", 0)))) \
            or age > self.ttl_s
        if dead:
            path.unlink(missing_ok=True)
            return frozenset()
        return frozenset(info.get("keys", ()))

    def held_by_others(self) -> frozenset[str]:
        now = time.time()
        held: set[str] = set()
        for path in self.folder.glob("*.json"):
            held |= self._live(path, now)
        return frozenset(held)

    def claim(self, wanted: Iterable[str]) -> tuple[Lease | None, frozenset[str]]:
        """Claim what no live lease holds; returns (our lease or None, keys others hold)."""
        wanted = frozenset(wanted)
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "a+b") as lock:
            if fcntl is not None:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                others = self.held_by_others() & wanted
                mine = wanted - others
                if not mine:
                    return None, others
                path = self.folder / f"{HOST}-{os.getpid()}-{next(_counter)}.json"
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps({"host": HOST, "pid": os.getpid(),
                                           "keys": sorted(mine)}), encoding="utf-8")
                os.replace(tmp, path)
            finally:
                if fcntl is not None:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        return Lease(path, mine, heartbeat_s=max(0.5, self.ttl_s / 6)), others
