"""Results derived from inputs, kept in the cache folder by what derived them.

:class:`KeyedRecord` is one JSON file of ``key -> value``. :class:`DerivedDigests` holds the
digests of derived images (corruptions): a rerun answers every question from the answer cache,
which is keyed by pixel digests; without this record it would corrupt every image again only to
hash it. With it, a corrupted image whose derivation (probe, its parameters, seed, source
digest, library versions) was seen before becomes a
:class:`~robustness.data.image.DeferredImage`: its pixels are computed only if something looks
at them. The file is a cache: unreadable or missing means recompute.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def derivation_key(*parts: Any) -> str:
    """A stable key for what derived an image (JSON of ``parts``, hashed)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class KeyedRecord:
    """``key -> JSON value`` read from ``path`` once, saved when asked; entries that
    :meth:`valid` refuses read as missing (recomputed)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._known: dict[str, Any] = self._read() if path is not None else {}
        self._new: dict[str, Any] = {}

    @staticmethod
    def valid(value: Any) -> bool:
        return value is not None

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())  # type: ignore[union-attr]
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and self.valid(v)} \
            if isinstance(data, dict) else {}

    def get(self, key: str) -> Any:
        found = self._known.get(key)
        return found if found is not None else self._new.get(key)

    def put(self, key: str, value: Any) -> None:
        if self.get(key) is None:
            self._new[key] = value

    def save(self) -> None:
        """Merge what this run added into the file (atomic replace, the file read back first so
        other jobs' entries stay; two jobs saving at the same instant may drop one's additions,
        which costs only a recomputation)."""
        if self.path is None or not self._new:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        merged = {**self._read(), **self._known, **self._new}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".derived-")
        with os.fdopen(fd, "w") as fh:
            json.dump(merged, fh)
        os.replace(tmp, self.path)
        self._known, self._new = merged, {}


class DerivedDigests(KeyedRecord):
    """``derivation key -> pixel digest`` of derived (corrupted) images."""

    @staticmethod
    def valid(value: Any) -> bool:
        return isinstance(value, str)
