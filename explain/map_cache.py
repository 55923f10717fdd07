"""Saliency maps cached like answers: keyed by everything that can change a map — the model's
identity, the mode, the method and its settings, the reference images it draws baselines from,
the explained target and what the model is shown (prompt and pixels) — so a rerun recomputes
no map. One ``.npz`` per map, written atomically; an unreadable file is a miss."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import fields
from pathlib import Path
from typing import Sequence

import numpy as np

from explain.methods import ImageExplainer, ImageMap
from robustness.data.query import Query
from robustness.models.base import ModelAdapter
from robustness.modes.base import AnsweringMode

log = logging.getLogger(__name__)
FORMAT = 1
SCALARS = tuple(f.name for f in fields(ImageMap) if f.name != "attributions")


class CachedMaps:
    """``method.attribute`` through a folder of stored maps."""

    def __init__(self, method: ImageExplainer, folder: Path, references: str) -> None:
        self.method = method
        self.folder = Path(folder)
        self.references = references  # what baselines are drawn from (the benchmark's hash)
        self.hits = self.misses = 0

    def key(self, adapter: ModelAdapter, mode: AnsweringMode, query: Query, target: str) -> str:
        prompt = mode.build_prompts(adapter, [query])[0]
        payload = {"v": FORMAT, "model": adapter.identity(), "mode": mode.identity(),
                   "method": self.method.name, "settings": self.method.settings(),
                   "references": self.references, "target": target,
                   "options": list(query.options), "label_map": list(query.label_map),
                   "prompt": prompt.cache_payload(), "image": query.image.digest}
        text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npz"

    def _read(self, key: str, query: Query) -> ImageMap | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                scalars = json.loads(str(data["scalars"]))
                attributions = data["attributions"]
        except (OSError, ValueError, KeyError) as err:
            log.warning("saliency cache: %s unreadable (%s); recomputing", path.name, err)
            return None
        return ImageMap(**{**scalars, "pair_id": query.pair_id, "image_index": query.image_index,
                           "attributions": attributions})

    def _write(self, key: str, m: ImageMap) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        scalars = {name: getattr(m, name) for name in SCALARS}
        np.savez(tmp, attributions=m.attributions, scalars=np.array(json.dumps(scalars)))
        os.replace(tmp, path)

    def attribute(self, adapter: ModelAdapter, mode: AnsweringMode, queries: Sequence[Query],
                  targets: Sequence[str]) -> list[ImageMap]:
        keys = [self.key(adapter, mode, q, t) for q, t in zip(queries, targets)]
        found = [self._read(k, q) for k, q in zip(keys, queries)]
        todo = [i for i, m in enumerate(found) if m is None]
        self.hits += len(queries) - len(todo)
        self.misses += len(todo)
        if todo:
            fresh = self.method.attribute(adapter, mode, [queries[i] for i in todo],
                                          [targets[i] for i in todo])
            for i, m in zip(todo, fresh):
                self._write(keys[i], m)
                found[i] = m
        return found  # type: ignore[return-value]
