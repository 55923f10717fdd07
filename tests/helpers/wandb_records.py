"""Read an offline W&B run file (``run-*.wandb``) in tests: its records, decoded.

The file is a LevelDB-style log (32 KiB blocks, 7-byte record headers: crc32, length, type)
after a 7-byte ``:W&B`` header, each record a ``wandb_internal_pb2.Record`` protobuf.
Tests use it to check a run's name, group, tags, config, summary and that it was finished.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: str | Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", "not a W&B run file"
    pos, records, pending = HEADER, [], b""
    while pos + HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < HEADER:
            pos += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        payload = data[pos + HEADER: pos + HEADER + length]
        pos += HEADER + length
        if kind == 0 and length == 0:
            break
        if kind == FULL:
            pending = payload
        elif kind == FIRST:
            pending = payload
            continue
        elif kind == MIDDLE:
            pending += payload
            continue
        elif kind == LAST:
            pending += payload
        record = pb.Record()
        record.ParseFromString(pending)
        records.append(record)
        pending = b""
    return records


def run_facts(run_dir: str | Path, *, wait_s: float = 20.0) -> dict[str, Any]:
    """Name, group, job type, tags, config, summary and exit code of the run(s) in a folder.

    W&B's service process writes the run file asynchronously, so on a loaded machine the exit
    record can land shortly after ``finish()`` returns: wait up to ``wait_s`` for it."""
    import time

    deadline = time.monotonic() + wait_s
    while True:
        facts = _read_facts(run_dir)
        if facts["exit_code"] is not None or time.monotonic() > deadline:
            return facts
        time.sleep(0.5)


def _read_facts(run_dir: str | Path) -> dict[str, Any]:
    files = sorted(Path(run_dir).glob("wandb/offline-run-*/run-*.wandb"))
    assert files, f"no offline W&B run in {run_dir}"
    facts: dict[str, Any] = {"n_runs": len(files), "config": {}, "summary": {}, "exit_code": None,
                             "history": [], "metrics": [], "artifacts": []}
    for record in read_records(files[-1]):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            facts.update(name=record.run.display_name, group=record.run.run_group,
                         job_type=record.run.job_type, tags=list(record.run.tags))
            for item in record.run.config.update:
                facts["config"][item.key] = json.loads(item.value_json)
        elif kind == "config":
            for item in record.config.update:
                if item.nested_key:
                    node = facts["config"]
                    for part in item.nested_key[:-1]:
                        node = node.setdefault(part, {})
                    node[item.nested_key[-1]] = json.loads(item.value_json)
                else:
                    facts["config"][item.key] = json.loads(item.value_json)
        elif kind == "summary":
            for item in record.summary.update:
                key = item.key or "/".join(item.nested_key)
                facts["summary"][key] = json.loads(item.value_json)
        elif kind == "history":
            facts["history"].append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                                     for item in record.history.item})
        elif kind == "metric":
            facts["metrics"].append({"name": record.metric.name, "glob": record.metric.glob_name,
                                     "step": record.metric.step_metric})
        elif kind == "artifact":
            facts["artifacts"].append({
                "type": record.artifact.type, "name": record.artifact.name,
                "used": record.artifact.use_after_commit,
                "metadata": json.loads(record.artifact.metadata or "{}"),
                "paths": [c.path for c in record.artifact.manifest.contents]})
        elif kind == "exit":
            facts["exit_code"] = record.exit.exit_code
    return facts
