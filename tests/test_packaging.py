"""The wheel carries every package and ``conf/`` (as ``robustness/conf``), as ``pyproject.toml`` says."""

from __future__ import annotations

import pytest

from tests.helpers.paths import ROOT

tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def test_every_package_is_listed_for_the_wheel():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    found = {str(p.parent.relative_to(ROOT)).replace("/", ".")
             for top in ("robustness", "attacks", "explain")
             for p in (ROOT / top).rglob("__init__.py")}
    assert set(config["packages"]) == found | {"robustness.conf"}
    assert config["package-dir"] == {"robustness.conf": "conf"}
    assert "**/*.yaml" in config["package-data"]["robustness.conf"]


def test_config_dir_prefers_the_packaged_copy(tmp_path, monkeypatch):
    from robustness import configs

    packaged = tmp_path / "robustness"
    (packaged / "conf").mkdir(parents=True)
    (packaged / "conf" / "config.yaml").write_text("defaults: []\n")
    monkeypatch.setattr(configs, "_PACKAGE", packaged)
    assert configs.config_dir() == (packaged / "conf").resolve()
    monkeypatch.setattr(configs, "_PACKAGE", ROOT / "robustness")
    assert configs.config_dir() == (ROOT / "conf").resolve()  # a checkout: conf/ beside it
