"""``dataset=pairs`` and ``dataset=hf``: benchmarks of the user's own pairs.

``PairsSource`` reads a table (:mod:`robustness.data.pairs_table`) and its images — PNG, JPEG,
8/16-bit TIFF, DICOM (:mod:`robustness.data.convert`) — checking everything first and reporting
every problem at once. ``HFSource`` loads pairs with the ``datasets`` library (images decoded by
it), writes them as a table with PNG images into the cache, and reads that like any table.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

from robustness.data.convert import ImageConverter, conversion_from, summarise
from robustness.data.image import ImageInput
from robustness.data.pairs_table import (TABLE_SUFFIXES, TableCheck, build_pairs, check_table,
                                         content_hash)
from robustness.data.types import Benchmark
from robustness.errors import UserError
from robustness.sources import BenchmarkSource
from robustness.validate import strict_bool

MAX_LISTED = 20  # problems named in a run's error line before "and N more"


def find_table(path: Path) -> Path:
    """``path`` itself, or the one table file in a folder."""
    if path.is_file():
        return path
    if path.is_dir():
        tables = sorted(p for p in path.iterdir() if p.suffix.lower() in TABLE_SUFFIXES
                        and p.name != "dataset.json")
        if len(tables) == 1:
            return tables[0]
        found = ", ".join(p.name for p in tables) or "none"
        raise UserError(f"{path}: expected one table (.csv, .tsv, .jsonl, .json) in the folder, "
                        f"found {found}; name it with dataset.path=<table>")
    raise UserError(f"{path}: no such table or folder (dataset.path)")


class PairsSource(BenchmarkSource):
    """A table of pairs with images beside it."""

    def __init__(self, path: str | Path, name: str = "pairs",
                 columns: Mapping[str, str] | None = None, window: Any = None, frame: int = 0,
                 keep_tags: Any = (), allow_outside: bool = False,
                 cache_dir: str | Path = ".cache/robustness/pairs") -> None:
        if path in (None, ""):
            raise UserError("dataset.path: the table of pairs is required "
                            "(dataset=pairs dataset.path=pairs.csv)")
        self.path = Path(os.path.expanduser(str(path)))
        self.name = name
        self.columns = dict(columns or {})
        self.conversion = conversion_from(window, frame, keep_tags)
        self.allow_outside = strict_bool("dataset.allow_outside", allow_outside)
        self.converter = ImageConverter(Path(cache_dir) / "converted", self.conversion)

    def check(self) -> tuple[TableCheck, dict[Path, Path]]:
        """Every problem of the table and its images; the converted file of each image."""
        check = check_table(find_table(self.path), self.columns, self.allow_outside)
        prepared: dict[Path, Path] = {}
        digests: dict[str, list[str]] = {}
        for row in check.rows:
            for column, image in zip(("image_1", "image_2"), row.values["_images"]):
                if image is None or image in prepared:
                    continue
                try:
                    prepared[image] = self.converter.prepare(image)
                    digests.setdefault(ImageInput.open(prepared[image]).digest, []).append(
                        str(image.name))
                except UserError as err:
                    check.problem(row.where, self.columns.get(column, column),
                                  str(err).removeprefix(f"{image}: "))
                except (OSError, SyntaxError, ValueError) as err:  # PIL: not an image at all
                    check.problem(row.where, self.columns.get(column, column),
                                  f"{image.name}: cannot identify it as an image (PNG, JPEG, "
                                  f"TIFF or DICOM; {type(err).__name__})")
        shared = [names for names in digests.values() if len(names) > 1]
        if shared:
            check.notes.append(f"{len(shared)} image(s) have the same pixels as another file "
                               f"(e.g. {', '.join(shared[0][:3])})")
        return check, prepared

    def load(self) -> Benchmark:
        check, prepared = self.check()
        if check.problems:
            more = len(check.problems) - MAX_LISTED
            listed = "; ".join(check.problems[:MAX_LISTED]) + (f"; and {more} more" if more > 0
                                                               else "")
            raise UserError(f"{check.path}: {len(check.problems)} problem(s) — {listed} "
                            f"(`robustness data check {check.path}` lists each on a line)")
        pairs = build_pairs(check, self.columns, prepared)
        return Benchmark(name=self.name, pairs=tuple(pairs), source=check.path,
                         content_hash=content_hash(pairs), image_root=check.path.parent)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "path": str(self.path)}
        if self.columns:
            out["columns"] = dict(self.columns)
        if self.conversion.window is not None:
            out["window"] = self.conversion.window
        if self.converter.records:
            out["conversion"] = summarise(self.converter.records)
            kept = {Path(p).name: r["tags"] for p, r in self.converter.records.items()
                    if r.get("tags")}
            if kept:  # only the keywords the user listed in dataset.keep_tags
                out["kept_tags"] = kept
        return out


@contextmanager
def _offline(enabled: bool) -> Iterator[None]:
    keys = ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")
    saved = {k: os.environ.get(k) for k in keys}
    if enabled:
        os.environ.update({k: "1" for k in keys})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class HFSource(BenchmarkSource):
    """Pairs in a Hugging Face dataset (hub id or local folder), through ``datasets``."""

    def __init__(self, path: str, split: str = "test", name: str = "hf",
                 columns: Mapping[str, str] | None = None, revision: str | None = None,
                 local_files_only: bool = False, window: Any = None, frame: int = 0,
                 keep_tags: Any = (), cache_dir: str | Path = ".cache/robustness/pairs") -> None:
        if not path:
            raise UserError("dataset.path: a hub id or local folder is required")
        self.path, self.split, self.name = str(path), split, name
        self.columns = dict(columns or {})
        self.revision = revision
        self.local_files_only = strict_bool("dataset.local_files_only", local_files_only)
        self.settings = {"window": window, "frame": frame, "keep_tags": keep_tags}
        self.cache_dir = Path(cache_dir)

    def _rows(self) -> Any:
        try:
            import datasets
        except ImportError:
            raise UserError("dataset=hf needs the datasets library: "
                            "pip install 'mediconfusion-robustness[datasets]'") from None
        local = Path(os.path.expanduser(self.path))
        with _offline(self.local_files_only):
            try:
                if (local / "state.json").is_file() or (local / "dataset_dict.json").is_file():
                    loaded = datasets.load_from_disk(str(local))
                    return loaded[self.split] if isinstance(loaded, datasets.DatasetDict) \
                        else loaded
                return datasets.load_dataset(str(local) if local.is_dir() else self.path,
                                             split=self.split, revision=self.revision)
            except (FileNotFoundError, ValueError, KeyError, ConnectionError, OSError) as err:
                raise UserError(f"dataset.path {self.path} (split {self.split}): cannot load "
                                f"({' '.join(str(err).split())[:300]})") from None

    def materialise(self) -> Path:
        """The dataset written as ``pairs.jsonl`` + PNG images in the cache; its path."""
        rows = self._rows()
        names = {c: self.columns.get(c, c) for c in ("image_1", "image_2")}
        key = hashlib.sha256(json.dumps([self.path, self.split, self.revision,
                                         getattr(rows, "_fingerprint", None)]).encode())
        folder = self.cache_dir / "hf" / key.hexdigest()[:16]
        table = folder / "pairs.jsonl"
        if table.is_file():
            return table
        (folder / "images").mkdir(parents=True, exist_ok=True)
        lines = []
        for i, record in enumerate(rows):
            out = dict(record)
            for column in names.values():
                image = record.get(column)
                if hasattr(image, "save"):  # a PIL image decoded by datasets
                    target = folder / "images" / f"{i}_{column}.png"
                    image.save(target, format="PNG")
                    out[column] = f"images/{target.name}"
            lines.append(json.dumps({k: v for k, v in out.items()
                                     if isinstance(v, (str, int, float, bool, list, type(None)))},
                                    ensure_ascii=False))
        tmp = table.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.replace(table)
        return table

    def load(self) -> Benchmark:
        source = PairsSource(self.materialise(), name=self.name, columns=self.columns,
                             cache_dir=self.cache_dir, **self.settings)
        bench = source.load()
        return Benchmark(name=bench.name, pairs=bench.pairs, source=bench.source,
                         content_hash=bench.content_hash, image_root=bench.image_root)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "split": self.split,
                **({"columns": dict(self.columns)} if self.columns else {})}
