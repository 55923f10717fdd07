"""The cache identity of a Hugging Face model holds the resolved device type and dtype."""

from __future__ import annotations

import pytest

from robustness.errors import ConfigError
from robustness.models.hf import HFAdapter

torch = pytest.importorskip("torch")


def test_identity_holds_the_resolved_dtype_and_device_type():
    auto = HFAdapter("org/model", dtype="auto", device="cpu").identity()
    assert auto["dtype"] == "float32" and auto["device_type"] == "cpu"
    assert HFAdapter("org/model", dtype="bfloat16", device="cpu").identity()["dtype"] == "bfloat16"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_an_unavailable_device_is_one_line_before_any_work(tmp_path, capsys):
    with pytest.raises(ConfigError, match="model.device: 'cuda' requested but CUDA is not"):
        HFAdapter("org/model", device="cuda").identity()
    from robustness.cli import main

    args = ["model.device=cuda", "probe=[]", "logger=none", "explain=none",
            f"cache.dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}",
            "dataset.pairs=2", "dataset.size=64"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.device: 'cuda'" in err[0]
    assert not (tmp_path / "run" / "summary.json").exists()
