"""Transfer sets: every attack condition's adversarial images, saved losslessly with a manifest,
and the ``transfer`` probe that replays them on any model.

``<run_dir>/adversarial/<condition>/<local id>.png`` (an image shared by several pairs and
attacked in each gets ``<local id>__<pair id>.png``) and ``manifest.json``:
``{"benchmark_hash", "surrogate", "attack", "images": [{"local_id", "pair_id", "image",
"file", "source_sha256", "adversarial_sha256", "eps"}]}`` — hashes are
:attr:`robustness.data.image.ImageInput.digest` of the pixels (shape and bytes), so a replay can
check it is attacking the image the set was made from.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from attacks.base import (Answers, Condition, Probe, ProbeContext, Queries, index_by_key,
                          source_image, success_rate)
from robustness.data.image import ImageInput
from robustness.data.query import Query
from robustness.data.types import Benchmark, Pair
from robustness.errors import ConfigError, UserError

FOLDER = "adversarial"
MANIFEST = "manifest.json"


def write_transfer_set(run_dir: Path, condition: str, attacked: Mapping[tuple[str, int], Query],
                       clean: Mapping[tuple[str, int], Query], benchmark: Benchmark,
                       surrogate: Mapping[str, Any], attack: Mapping[str, Any]) -> Path:
    """Save the attacked images of one condition and its manifest; returns the folder."""
    from robustness.run_outputs import atomic_write, safe_name

    folder = run_dir / FOLDER / safe_name(condition)
    folder.mkdir(parents=True, exist_ok=True)
    entries, used = [], set()
    for key in sorted(attacked):
        query = attacked[key]
        if "linf" not in query.meta:
            continue  # a slot this condition did not attack
        pair = benchmark.pair(query.pair_id)
        slot = int(query.meta.get("source_image", query.image_index))
        local_id = pair.image_keys[slot - 1].replace("/", "_")
        name = f"{local_id}.png" if local_id not in used else f"{local_id}__{pair.pair_id}.png"
        used.add(local_id)
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(query.image.png_bytes())
        tmp.replace(folder / name)
        entries.append({"local_id": local_id, "pair_id": pair.pair_id, "image": slot,
                        "file": name, "source_sha256": clean[key].image.digest,
                        "adversarial_sha256": query.image.digest,
                        "eps": attack.get("params", {}).get("eps")})
    manifest = {"benchmark_hash": benchmark.content_hash, "surrogate": dict(surrogate),
                "attack": dict(attack), "images": entries}
    atomic_write(folder / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return folder


def read_image(folder: Path, entry: Mapping[str, Any]) -> ImageInput:
    """One saved adversarial image, checked against its recorded hash."""
    image = ImageInput.open(folder / entry["file"])
    if image.digest != entry["adversarial_sha256"]:
        raise UserError(f"{folder / entry['file']}: does not match its manifest "
                        "(adversarial_sha256)")
    return image


class Transfer(Probe):
    """Replay a saved transfer set on any model (black-box transfer): the adversarial images an
    attack made on a surrogate, shown to this run's model. One condition per saved attack
    condition, ``transfer@<source condition>``; slots the attack left alone stay clean.

    A set made on another benchmark (content hash), or for other clean pixels than this run's,
    is refused in one line."""

    name = "transfer"

    def __init__(self, source: str | Path | None = None,
                 conditions: Sequence[str] | None = None, name: str | None = None) -> None:
        self._set_name(name)
        if not source:
            raise ConfigError(f"probe {self.name}: source is required: a run folder with "
                              "adversarial/ (probe.transfer.source=RUN_DIR)")
        root = Path(os.path.expanduser(str(source)))
        folder = root / FOLDER if (root / FOLDER).is_dir() else root
        found = {p.parent.name: p.parent for p in sorted(folder.glob(f"*/{MANIFEST}"))}
        if not found:
            raise ConfigError(f"probe {self.name}: {folder}: no saved adversarial sets "
                              f"(*/{MANIFEST}); run an attack there first")
        wanted = list(conditions) if conditions else list(found)
        missing = [c for c in wanted if c not in found]
        if missing:
            raise ConfigError(f"probe {self.name}: {folder} has no set {', '.join(missing)} "
                              f"(it has: {', '.join(found)})")
        self.folder = folder
        self.sets: dict[str, tuple[Path, dict[str, Any]]] = {}
        for cond in wanted:
            path = found[cond] / MANIFEST
            try:
                manifest = json.loads(path.read_text(encoding="utf-8"))
                images = {(e["pair_id"], int(e["image"])): e for e in manifest["images"]}
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise ConfigError(f"{path}: not a transfer-set manifest ({err})") from None
            self.sets[cond] = (found[cond], {**manifest, "by_slot": images})
        self._loaded: dict[tuple[str, str, int], ImageInput] = {}

    def conditions(self) -> list[Condition]:
        out = []
        for cond, (folder, manifest) in self.sets.items():
            attack = manifest.get("attack", {})
            out.append(Condition(
                name=f"{self.name}@{cond}", probe=self.name,
                params={"source": str(folder), "source_condition": cond,
                        "surrogate": manifest.get("surrogate", {}).get("model_id"),
                        "attack": attack.get("name"), **dict(attack.get("params", {}))}))
        return out

    def check(self, benchmark: Benchmark) -> None:
        for cond, (folder, manifest) in self.sets.items():
            if manifest.get("benchmark_hash") != benchmark.content_hash:
                raise ConfigError(f"probe {self.name}: {folder} was made on another benchmark "
                                  f"(content hash {str(manifest.get('benchmark_hash'))[:12]}…, "
                                  f"this run's {benchmark.content_hash[:12]}…)")

    def apply(self, condition: Condition, pair: Pair, queries: tuple[Query, Query],
              ctx: ProbeContext) -> Sequence[Query]:
        cond = str(condition.params["source_condition"])
        folder, manifest = self.sets[cond]
        out = []
        for q in queries:
            slot = source_image(q)
            entry = manifest["by_slot"].get((pair.pair_id, slot))
            if entry is not None:
                if entry["source_sha256"] != q.image.digest:
                    raise ConfigError(f"probe {self.name}: {folder / entry['file']} was made "
                                      f"from other pixels than pair {pair.pair_id} image {slot} "
                                      "of this run")
                key = (cond, pair.pair_id, slot)
                if key not in self._loaded:
                    self._loaded[key] = read_image(folder, entry)
                q = replace(q, image=self._loaded[key]).with_meta(transfer=cond)
            out.append(q)
        return tuple(out)

    def extra_metrics(self, condition: Condition, clean_answers: Answers, probe_answers: Answers,
                      probe_queries: Queries) -> dict[str, Any]:
        """Transfer success: right on clean, wrong on the replayed adversarial image."""
        replayed = [q for q in index_by_key(probe_queries).values() if "transfer" in q.meta]
        return {"attack_success_rate": success_rate(replayed, index_by_key(clean_answers),
                                                    index_by_key(probe_answers)),
                "replayed_images": len(replayed)}
