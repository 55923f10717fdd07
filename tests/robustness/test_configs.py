"""Every config file in ``conf/`` composes, and what can be built without downloads is built.

Groups and options are discovered from the folder, so a new YAML is tested the moment it is
added. Models are constructed (adapters load weights lazily, on first use); a model that needs
something absent here (an API key) may refuse with a one-line ``UserError`` — anything else
fails the test.
"""

from __future__ import annotations


import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import OmegaConf

from robustness.configs import config_dir
from robustness.errors import UserError

CONF = config_dir()
# Our launcher files share their plugin's name (so `hydra/launcher=joblib` works); Hydra then
# validates them against the plugin's schema and says so.
pytestmark = pytest.mark.filterwarnings(
    "ignore:(?s).*validated against ConfigStore schema:UserWarning")


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


# conf/gate holds `robustness gate --config` rule files (tested in test_gate*), not an
# experiment config group.
GROUPS = sorted(str(p.parent.relative_to(CONF)) for p in CONF.rglob("*.yaml")
                if p.parent != CONF and p.parent.name != "gate")
GROUPS = sorted(set(GROUPS))
CASES = [(group, name) for group in GROUPS for name in options(group)]
# The default model's config ships with the reference model; where this checkout lacks it,
# the other configs are composed over another model so they are still tested.
HAVE_REFERENCE = (CONF / "model" / "reference.yaml").is_file()
BASE = [] if HAVE_REFERENCE else ["model=llava_1_5"]


def compose_with(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(config_name="config", overrides=[*BASE, *overrides],
                      return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # so ${hydra:...} interpolations resolve
    return cfg


def build(node):
    """Instantiate a node; a UserError (e.g. a missing API key) is an acceptable refusal."""
    try:
        return instantiate(node, _convert_="all")
    except UserError:
        return None
    except Exception as err:  # Hydra wraps errors raised by constructors
        cause = err.__cause__
        while cause is not None and not isinstance(cause, UserError):
            cause = cause.__cause__
        if isinstance(cause, UserError):
            return None
        raise


def override_for(group: str, name: str) -> str:
    if group == "probe":
        return f"probe=[{name}]"
    return f"{group}={name}"


def test_groups_cover_the_contract():
    for group in ("dataset", "model", "mode", "prompt", "probe", "logger", "experiment",
                  "explain", "hydra/launcher"):
        assert group in GROUPS, group
    assert {"phantom", "mediconfusion"} <= set(options("dataset"))
    assert {"wandb", "none"} <= set(options("logger"))
    assert {"basic", "joblib", "submitit_slurm"} <= set(options("hydra/launcher"))
    assert {"paper_table", "full_sweep"} <= set(options("experiment"))


@pytest.mark.skipif(not HAVE_REFERENCE, reason="conf/model/reference.yaml (the default model) "
                    "comes with the reference model")
def test_default_config_is_the_offline_default_experiment():
    cfg = compose_with()
    choices = cfg.hydra.runtime.choices
    assert choices["dataset"] == "phantom" and choices["model"] == "reference"
    assert choices["mode"] == "mc" and choices["prompt"] == "direct"
    assert choices["logger"] == "wandb" and choices["explain"] == "default"
    assert choices["hydra/launcher"] == "basic"
    assert "option_swap" in cfg.probe and len(cfg.probe) >= 3
    assert cfg.logger.mode == "offline"
    assert cfg.dataset.seed < 1000  # disjoint from the reference model's training seeds
    run_dir = OmegaConf.to_container(cfg.hydra.run, resolve=True)["dir"]
    assert run_dir.startswith("runs/") and run_dir.endswith("_reference_mc")
    assert not cfg.hydra.job.chdir


@pytest.mark.parametrize("group,name", CASES, ids=[f"{g}/{n}" for g, n in CASES])
def test_every_config_composes_and_builds(group, name):
    if group == "hparams_search":
        import importlib.util

        if importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None:
            pytest.skip("the Optuna sweeper is not installed (an optional extra)")
    cfg = compose_with(override_for(group, name))
    job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    assert OmegaConf.to_container(job, resolve=True)  # every interpolation resolves
    assert OmegaConf.to_container(cfg.hydra.run, resolve=True)["dir"]
    if group == "hydra/launcher":
        node = cfg.hydra.launcher
        assert node._target_
        module = node._target_.rsplit(".", 1)[0]
        import importlib.util

        if module.startswith("hydra._internal"):  # Hydra builds its own launchers only
            from hydra.utils import get_class

            assert get_class(node._target_)
            return
        if importlib.util.find_spec(module.split(".")[0]) is None or \
                importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (an optional extra)")
        assert build(node) is not None
        return
    if group in ("experiment", "debug", "hparams_search"):  # presets of the whole config
        from attacks import build_probes

        build_probes(cfg.get("probe"))
        return
    if group == "probe":
        from attacks import build_probes

        if cfg.probe[name].get("source", "given") is None:  # transfer: the user names a run
            with pytest.raises(UserError, match="source is required"):
                build_probes(cfg.probe)
            return
        probes = build_probes(cfg.probe)
        assert [p.name for p in probes] == [name]
        return
    if group.startswith("hydra/"):
        assert OmegaConf.to_container(cfg.hydra[group.split("/")[1]], resolve=True)
        return
    node = cfg[group.split("/")[0]]
    if OmegaConf.missing_keys(node):  # values the user must give (model.base_url=???)
        return
    if "_target_" in node:
        built = build(node)
        if group == "dataset":
            assert built is not None and hasattr(built, "load")
        if group == "logger":
            assert hasattr(built, "finish")


def test_experiments_are_multirun_presets():
    cfg = compose_with("experiment=paper_table")
    assert not cfg.get("probe")
    assert set(str(cfg.hydra.sweeper.params.mode).split(",")) == {"ff", "mc", "gd", "ps"}
    assert cfg.name == "paper_table"
    cfg = compose_with("experiment=full_sweep")
    assert len(cfg.probe) >= 15 and cfg.hydra.runtime.choices["mode"] == "mc"
    assert "reference_biased" in str(cfg.hydra.sweeper.params.model)


def test_phantom_source_settings_compose_from_the_command_line():
    cfg = compose_with("dataset=phantom", "dataset.seed=7", "dataset.pairs=20")
    source = instantiate(cfg.dataset)
    assert (source.seed, source.pairs) == (7, 20)
    cfg = compose_with("dataset=mediconfusion", "dataset.root=/data/mc")
    assert str(instantiate(cfg.dataset).root) == "/data/mc"


def test_config_files_stay_small():
    for path in CONF.rglob("*.yaml"):
        n = len(path.read_text().splitlines())
        assert n <= 60, f"{path.relative_to(CONF)} has {n} lines"


def test_debug_local_and_paths_groups(tmp_path):
    from robustness.api import compose

    fast = compose(["debug=fast"])
    assert fast.dataset.pairs == 8 and list(fast.probe) == ["option_swap"]
    assert "_target_" not in fast.explain and "_target_" not in fast.logger
    moved = compose(["paths.cache=/shared/c", "paths.runs=/scratch/runs"])
    assert moved.cache.dir == "/shared/c" and moved.dataset.cache_dir == "/shared/c/phantom"
    assert str(moved.hydra.sweep.dir).startswith("/scratch/runs/multirun/")
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "default.yaml").write_text("# @package _global_\nseed: 5\n")
    assert compose([], config_dir=tmp_path).seed == 5  # this machine's settings, if present
    assert compose([]).seed == 0
