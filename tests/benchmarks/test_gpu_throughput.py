"""``benchmarks/gpu_throughput.py`` runs unattended on a CPU at the small shape (as CI does) and
ends with its two contract lines; its timings are read by people, never asserted here."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.helpers.paths import ROOT


def test_gpu_benchmark_runs_on_cpu_at_the_small_shape():
    import torch

    cuda = torch.cuda.is_available()  # on a GPU machine: the small shape, on the GPU
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_throughput.py"),
                          "--shape", "small" if cuda else "7b", "--questions", "4",
                          "--batch-size", "4",
                          "--max-new-tokens", "2"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    if not cuda:
        assert "no CUDA device: running the reduced 'small' shape" in lines[0]  # says so
    assert re.fullmatch(r"questions_per_s: \d+\.\d\d", lines[-2])
    assert re.fullmatch(r"speedup: \d+\.\d\d", lines[-1])
    for mode in ("GD", "PS", "MC"):
        assert any(line.startswith(f"{mode}: official pattern") for line in lines)
