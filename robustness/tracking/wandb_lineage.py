"""W&B artifacts with lineage: the benchmark (``dataset``, keyed by content hash) and the model
(``model``, a reference: hub id and revision or checkpoint hash) used by the run; its results
(``robustness-results``) and adversarial sets (``adversarial-set``) logged by it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping


def artifact_name(*parts: str) -> str:
    """An artifact name W&B accepts (letters, digits, ``-``, ``_``, ``.``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(p for p in parts if p)).strip("-.")[:120]


def benchmark_manifest(run_dir: Path) -> list[dict[str, Any]]:
    """Every image of the benchmark by pair and slot with its sha256 (from clean predictions)."""
    path = run_dir / "predictions" / "clean.jsonl"
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [{"pair_id": r["pair_id"], "image": r["image"], "sha256": r["query"]["image_sha256"]}
            for r in records]


def model_reference(identity: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The model artifact's name and metadata: hub id and revision, or the checkpoint's hash
    for a local folder (its path is not kept: it says nothing another machine can use)."""
    model_id = str(identity.get("model_id") or identity.get("model") or "model")
    meta = {k: v for k, v in identity.items() if isinstance(v, (str, int, float, bool))}
    local = model_id.startswith(("/", ".", "~")) or Path(model_id).is_absolute()
    if local:
        meta["model_id"] = Path(model_id).name
        key = str(identity.get("weights") or "")
    else:
        key = str(identity.get("revision") or "")
    return artifact_name("model", meta["model_id"] if local else model_id, key[:16]), meta


def use_artifact(run: Any, artifact: Any) -> None:
    """Declare ``artifact`` an input of ``run``. W&B refuses ``use_artifact`` offline, so offline
    the run file gets the record ``use_artifact`` itself writes for a new artifact (logged, used
    once committed); ``wandb sync`` then links it as the run's input."""
    if run.offline:
        run._log_artifact(artifact, is_user_created=True, use_after_commit=True)
    else:
        run.use_artifact(artifact)


def hub_url(meta: Mapping[str, Any]) -> str | None:
    """The Hugging Face page of a hub model at its revision (``None`` for local or API models)."""
    model_id = str(meta.get("model_id") or "")
    if meta.get("provider") != "huggingface" or not re.fullmatch(r"[\w.-]+/[\w.-]+", model_id):
        return None
    return f"https://huggingface.co/{model_id}/tree/{meta.get('revision') or 'main'}"


def log_lineage(run: Any, summary: Mapping[str, Any]) -> None:
    """Use the benchmark and model artifacts; log the results and each adversarial set."""
    import wandb

    run_dir = Path(summary["run_dir"])
    bench = summary.get("benchmark") or {}
    content_hash = str(bench.get("content_hash") or "")
    dataset = wandb.Artifact(artifact_name("benchmark", str(bench.get("name")), content_hash[:12]),
                             type="dataset", metadata={
                                 "name": bench.get("name"), "content_hash": content_hash,
                                 "n_pairs": bench.get("n_pairs")})
    with dataset.new_file("manifest.json", encoding="utf-8") as f:
        json.dump({"content_hash": content_hash, "images": benchmark_manifest(run_dir)}, f)
    use_artifact(run, dataset)

    name, meta = model_reference(summary.get("model_identity") or {})
    model = wandb.Artifact(name, type="model", metadata=meta)
    with model.new_file("identity.json", encoding="utf-8") as f:
        json.dump(meta, f)
    hub = hub_url(meta)
    if hub:
        model.add_reference(hub, name="hub", checksum=False)  # a pointer: nothing is fetched
    use_artifact(run, model)

    results = wandb.Artifact(artifact_name("results", run.id), type="robustness-results",
                             metadata={"model": summary.get("model"), "mode": summary.get("mode"),
                                       "benchmark_hash": content_hash})
    results.add_file(str(run_dir / "summary.json"), name="summary.json")
    if (run_dir / "predictions").is_dir():
        results.add_dir(str(run_dir / "predictions"), name="predictions")
    run.log_artifact(results)

    for manifest in sorted((run_dir / "adversarial").glob("*/manifest.json")):
        info = json.loads(manifest.read_text(encoding="utf-8"))
        adv = wandb.Artifact(artifact_name("adversarial", manifest.parent.name, run.id),
                             type="adversarial-set", metadata={
                                 "condition": manifest.parent.name, "attack": info.get("attack"),
                                 "benchmark_hash": info.get("benchmark_hash"),
                                 "surrogate": info.get("surrogate")})
        adv.add_dir(str(manifest.parent))
        run.log_artifact(adv)
