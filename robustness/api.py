"""The toolkit as a library: run an experiment, score predictions, from Python.

:func:`evaluate` composes the same ``conf/`` as the command line (installed, plus the user's own
config folder if given), runs the experiment without a Hydra job, and returns a
:class:`RunResult`; its summary is the one ``summary.json`` holds, the same the CLI writes for the
same overrides. :func:`score` is ``robustness score --json`` as a function. The gate's
:func:`robustness.gate.compare` compares two runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from robustness.errors import ConfigError


@dataclass
class RunResult:
    """One finished experiment: its summary, its answers and where its files are."""

    summary: dict[str, Any]  # exactly summary.json
    run_dir: Path
    answers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # per condition

    @property
    def summary_path(self) -> Path:
        return self.run_dir / "summary.json"

    @property
    def predictions_dir(self) -> Path:
        return self.run_dir / "predictions"

    @property
    def report_path(self) -> Path:
        return self.run_dir / "report.md"

    @property
    def conditions(self) -> list[str]:
        return list(self.summary["conditions"])

    def metric(self, condition: str = "clean", name: str = "set_accuracy") -> float | None:
        """``summary["conditions"][condition]["overall"][name]``."""
        return self.summary["conditions"][condition]["overall"][name]


def _override(key: str, value: Any) -> str:
    """A shortcut as a Hydra override: lists as ``[a,b]``, None as ``null``, bools lowercase."""
    def text(v: Any) -> str:
        if v is None:
            return "null"
        if isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, (list, tuple)):
            return "[" + ",".join(text(x) for x in v) + "]"
        return str(v)

    return f"{key}={text(value)}"


def compose(overrides: Sequence[str] = (), config_dir: str | Path | None = None) -> Any:
    """The composed config (Hydra's node included) for ``overrides``, exactly as the command
    line composes it; ``config_dir`` adds a user's config folder (like ``--config-dir``)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from robustness.configs import config_dir as toolkit_conf
    from robustness.shell import quiet_schema_matching

    extra = [f"hydra.searchpath=[file://{Path(config_dir).resolve()}]"] if config_dir else []
    quiet_schema_matching()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(toolkit_conf()), version_base=None):
            return hydra_compose(config_name="config", overrides=[*extra, *overrides],
                                 return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(" ".join(str(err).split("Config search path")[0].split())) from None
    finally:
        GlobalHydra.instance().clear()


def evaluate(overrides: Sequence[str] = (), run_dir: str | Path | None = None, *,
             config_dir: str | Path | None = None, **shortcuts: Any) -> RunResult:
    """Run one experiment and return its result.

    ``overrides`` are the command line's (``["model=reference", "probe=[option_swap]"]``);
    ``shortcuts`` are the same as keyword arguments (``model="reference",
    probe=["option_swap"]``, ``**{"dataset.pairs": 16}``). ``run_dir`` defaults to the CLI's
    ``runs/<date>/<time>_<model>_<mode>/``. Bad input raises :class:`robustness.errors.UserError`
    (one line naming the setting), like the CLI's exit code 2.
    """
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    from robustness.experiment import run_experiment

    args = [*overrides, *(_override(k, v) for k, v in shortcuts.items())]
    if run_dir is not None:
        args.append(f"run_dir={Path(run_dir).resolve()}")
    cfg = compose(args, config_dir)
    HydraConfig.instance().set_config(cfg)  # ${hydra:...} and the config group choices
    if run_dir is None:
        run_dir = Path(OmegaConf.to_container(cfg.hydra.run, resolve=True)["dir"]).resolve()
    job = cfg.copy()
    with open_dict(job):
        del job["hydra"]
        job.run_dir = str(run_dir)
    summary = run_experiment(job, echo=False)
    return RunResult(summary=summary, run_dir=Path(run_dir), answers=_answers(Path(run_dir),
                                                                               summary))


def _answers(run_dir: Path, summary: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    from robustness.run_outputs import safe_name

    out = {}
    for name in summary["conditions"]:
        path = run_dir / "predictions" / f"{safe_name(name)}.jsonl"
        out[name] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                     if line.strip()]
    return out


def score(predictions: str | Path, annotations: str | Path, *, threshold: float = 3.0,
          resamples: int = 2000, seed: int = 0, uncertainty: str = "clustered") -> dict[str, Any]:
    """``robustness score PREDICTIONS --annotations DATASET_JSON --json`` as a function: the
    official metrics overall and per category, bootstrap CIs, and how many pairs were scored."""
    from robustness.commands.score import score_file

    return score_file(predictions, annotations, threshold=threshold, resamples=resamples,
                      seed=seed, uncertainty=uncertainty)
