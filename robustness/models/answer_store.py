"""The answer cache's file: one append-only JSON Lines file per model identity.

Each line is ``{"k": key, "kind": kind, "r": result}``. Each batch is appended in one write
under an exclusive ``fcntl`` lock, then flushed and fsynced, so a run killed at any moment
leaves at most one truncated last line (sealed with a newline by the next writer). A record is
kept only if it decodes into its result type: a torn, garbage or wrongly shaped line is a miss,
counted in ``skipped_lines``, and a later valid copy of the same key wins. ``compact`` rewrites
the file atomically (temp file, fsync, rename, under the lock); writers and readers notice the
new file by its inode and carry on.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from robustness.models.base import (ContinuationScore, GenerateResult, LoglikelihoodResult,
                                    NextTokenResult, Usage)

try:  # POSIX; elsewhere writers are not serialised across processes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

KINDS = ("generate", "next_token_scores", "loglikelihood")


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def encode_result(result: Any) -> dict[str, Any]:
    """A JSON-safe dict of a result dataclass (latency and usage kept for cost accounting)."""
    return asdict(result)


def decode_result(kind: str, raw: dict[str, Any]) -> Any:
    """Rebuild the result dataclass of ``kind`` from :func:`encode_result` output (raises
    ``TypeError``/``KeyError``/``ValueError`` on a record of another shape)."""
    usage = Usage(**raw["usage"]) if isinstance(raw.get("usage"), dict) else None
    if kind == "generate":
        return GenerateResult(**{**raw, "usage": usage})
    if kind == "next_token_scores":
        if not isinstance(raw.get("logprobs"), dict):
            raise TypeError("logprobs must be an object")
        return NextTokenResult(**{**raw, "usage": usage})
    if kind == "loglikelihood":
        scores = [ContinuationScore(**s) for s in raw["scores"]]
        return LoglikelihoodResult(**{**raw, "scores": scores, "usage": usage})
    raise ValueError(f"unknown result kind {kind!r}")


def parse_line(line: bytes) -> tuple[str, str, dict[str, Any]] | None:
    """``(key, kind, result)`` of a valid record line, None for anything else."""
    try:
        rec = json.loads(line)
        key, kind, result = rec["k"], rec["kind"], rec["r"]
        if not isinstance(key, str) or not isinstance(result, dict) or kind not in KINDS:
            return None
        decode_result(kind, result)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    return key, kind, result


class _Locked:
    """An open handle on ``path`` holding the exclusive lock, re-opened if the file was
    replaced (compacted) while we waited for the lock."""

    def __init__(self, path: Path, mode: str = "a+b") -> None:
        self.path, self.mode = path, mode

    def __enter__(self):
        while True:
            fh = open(self.path, self.mode)
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                same = os.fstat(fh.fileno()).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fh = fh
                return fh
            fh.close()  # replaced under us: lock the new file instead

    def __exit__(self, *exc: Any) -> None:
        if fcntl is not None:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
        self.fh.close()


class AnswerStore:
    """The records of one cache file, kept current with what other processes append."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)
        self._records: dict[str, tuple[str, dict[str, Any]]] = {}
        self._offset = 0  # bytes consumed (always just after a newline)
        self._inode = -1
        self.skipped_lines = 0
        self.refresh()

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: str) -> bool:
        return key in self._records

    def get(self, key: str) -> tuple[str, dict[str, Any]] | None:
        return self._records.get(key)

    def refresh(self) -> int:
        """Read complete lines appended since the last read (by any process); returns how many
        new records. A compacted (replaced) file is read again from its start."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return 0
        if stat.st_ino != self._inode:
            self._inode, self._offset, self.skipped_lines = stat.st_ino, 0, 0
        if stat.st_size <= self._offset:
            return 0
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read(stat.st_size - self._offset)
        end = chunk.rfind(b"\n")
        if end < 0:  # only a partial line so far (a writer in progress or a killed one)
            return 0
        added = 0
        for line in chunk[: end + 1].splitlines():
            if not line.strip():
                continue
            record = parse_line(line)
            if record is None:
                self.skipped_lines += 1  # torn by a kill, or not a record we can use: a miss
                continue
            key, kind, result = record
            if key not in self._records:  # the first valid copy wins; later ones are equal
                self._records[key] = (kind, result)
                added += 1
        self._offset += end + 1
        return added

    def append(self, records: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        """Append ``(key, kind, result)`` records durably: one locked write, flush, fsync."""
        if not records:
            return
        data = "".join(canonical({"k": k, "kind": kind, "r": r}) + "\n" for k, kind, r in records)
        with _Locked(self.path) as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() > 0:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":  # a killed writer left half a line: seal it off
                    fh.seek(0, os.SEEK_END)
                    fh.write(b"\n")
            fh.seek(0, os.SEEK_END)
            fh.write(data.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        for key, kind, result in records:
            self._records.setdefault(key, (kind, result))


# ------------------------------------------------------------------- verify and compact


@dataclass
class FileReport:
    """What one cache file holds: valid records, and lines a compaction would drop."""

    path: Path
    records: int = 0
    bad_lines: int = 0  # torn, not JSON, or not a decodable result
    duplicates: int = 0  # a key already held by an earlier valid line
    conflicts: list[str] = field(default_factory=list)  # keys whose copies differ

    @property
    def clean(self) -> bool:
        return not (self.bad_lines or self.duplicates)


def _scan(data: bytes, report: FileReport) -> Iterator[bytes]:
    """Valid, first-of-their-key lines of ``data`` (re-encoded canonically); fills ``report``."""
    seen: dict[str, str] = {}
    for line in data.splitlines():
        if not line.strip():
            continue
        record = parse_line(line)
        if record is None:
            report.bad_lines += 1
            continue
        key, kind, result = record
        text = canonical({"k": key, "kind": kind, "r": result})
        if key in seen:
            report.duplicates += 1
            if seen[key] != text and len(report.conflicts) < 10:
                report.conflicts.append(key)
            continue
        seen[key] = text
        report.records += 1
        yield (text + "\n").encode("utf-8")


def verify_file(path: Path) -> FileReport:
    """Read-only check of one cache file."""
    report = FileReport(path)
    for _ in _scan(path.read_bytes(), report):
        pass
    return report


def compact_file(path: Path) -> FileReport:
    """Rewrite ``path`` without bad or duplicate lines, atomically and under the writers' lock:
    every valid record survives (the first copy of each key)."""
    report = FileReport(path)
    with _Locked(path, "rb") as fh:
        kept = b"".join(_scan(fh.read(), report))
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".compact", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(kept)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)  # readers and writers see a new inode and follow it
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return report


def cache_files(folder: Path) -> list[Path]:
    """The answer files under a cache folder (``DIR/answers/*.jsonl``, or ``DIR/*.jsonl``)."""
    answers = folder / "answers"
    root = answers if answers.is_dir() else folder
    return sorted(p for p in root.glob("*.jsonl") if p.is_file())
