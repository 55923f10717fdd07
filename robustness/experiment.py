"""The experiment's composition root: one composed config in, the built parts run, a summary out.

Like lightning-hydra-template's ``train.py``: every part comes from its config group through
``hydra.utils.instantiate`` (``conf/`` is the only registry) — the benchmark source, the model
(wrapped in the answer cache, and so is every auxiliary model the mode declares), the mode, the
probes, the trackers and the explainer — and :class:`robustness.runner.Runner` runs them.
Every default lives in ``conf/config.yaml``; nothing here restates one.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from robustness.errors import ConfigError, UserError
from robustness.objective import check_objective
from robustness.redaction import redact_text
from robustness.targets import check_targets
from robustness.validate import integer, optional_bool, strict_bool

log = logging.getLogger("robustness")

NOISY_LOGGERS = ("httpx", "urllib3", "PIL", "matplotlib", "filelock")


def _choices() -> dict[str, Any]:
    from hydra.core.hydra_config import HydraConfig

    try:
        return dict(HydraConfig.get().runtime.choices)
    except ValueError:  # not inside a Hydra job (tests compose configs directly)
        return {}


def _abspath(path: str | os.PathLike) -> Path:
    return Path(os.path.expanduser(str(path))).resolve()


def _hydra_output_dir() -> str:
    from hydra.core.hydra_config import HydraConfig

    try:
        return HydraConfig.get().runtime.output_dir
    except ValueError:
        raise ConfigError("run_dir: not inside a Hydra job; set run_dir=DIR") from None


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def build(node: Any, group: str) -> Any:
    """What ``node`` (the config of ``group``) builds. A constructor that rejects a value is one
    line naming the group (Hydra wraps the cause; a ``TypeError`` is an unknown or missing
    setting, e.g. ``+model.api_key=…``)."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    missing = OmegaConf.missing_keys(node) if OmegaConf.is_config(node) else set()
    if missing:
        key = sorted(missing)[0]  # full keys: dataset.path
        raise ConfigError(f"{key}: required, not set (e.g. {key}=VALUE; see conf/{group}/)")
    try:
        return instantiate(node, _convert_="all")
    except InstantiationException as err:
        cause = err.__cause__ or err.__context__
        while isinstance(cause, InstantiationException) and (cause.__cause__ or cause.__context__):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, UserError):
            raise cause from None
        detail = " ".join(str(cause or err).split())
        raise ConfigError(f"{group}: cannot build {node.get('_target_')} ({detail})") from None


def _build_optional(cfg: Any, group: str) -> Any:
    """The object a group's node builds, or None for a node without ``_target_`` (``none``)."""
    node = cfg.get(group)
    return build(node, group) if node and "_target_" in node else None


def build_prompt(prompt_cfg: Any) -> Any:
    """The run's base prompting strategy (``prompt`` group), or None for the mode's default."""
    if not prompt_cfg:
        return None
    if "_target_" not in prompt_cfg:
        raise ConfigError("prompt: config needs a _target_ (e.g. robustness.modes.prompts."
                          "PromptStrategy)")
    return build(prompt_cfg, "prompt")


def _uncertainty_setting(value: Any) -> str:
    if value not in ("clustered", "pairs"):
        raise ConfigError(f"uncertainty: expected clustered or pairs, got {value!r}")
    return value


def _resolved(cfg: Any) -> dict[str, Any]:
    """The config as plain data with interpolations resolved (one line if one cannot be)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as err:
        raise ConfigError(f"config: {' '.join(str(err).split())}") from None


def run_settings(cfg: Any) -> Any:
    """The loop's settings from the top level of ``conf/config.yaml``, each checked (type and
    range) with one line naming it; also the cache folder and the names."""
    from robustness.runner import RunSettings

    for key in ("name", "run_name", "run_dir"):
        value = cfg.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{key}: expected text, got {value!r}")
    cache_dir = cfg.cache.dir
    if not isinstance(cache_dir, str) or not cache_dir:
        raise ConfigError(f"cache.dir: expected a folder path, got {cache_dir!r}")
    if _abspath(cache_dir).exists() and not _abspath(cache_dir).is_dir():
        raise ConfigError(f"cache.dir: {cache_dir} is a file, expected a folder")
    strict_bool("cache.enabled", cfg.cache.enabled)
    if cfg.get("plan") not in (None, False, True, "json"):
        raise ConfigError(f"plan: expected true, false or json, got {cfg.get('plan')!r}")
    check_objective(cfg.get("objective"))
    return RunSettings(batch_pairs=integer("batch_pairs", cfg.batch_pairs, minimum=1),
                       seed=integer("seed", cfg.seed, minimum=0),
                       examples=integer("examples", cfg.examples, minimum=0),
                       resamples=integer("resamples", cfg.resamples, minimum=1),
                       progress=optional_bool("progress", cfg.progress),
                       uncertainty=_uncertainty_setting(cfg.get("uncertainty", "clustered")),
                       cache_dir=_abspath(cache_dir) if cfg.cache.enabled else None)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity: a Slurm allocation, a container)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def use_threads(threads: int) -> None:
    """Give torch ``threads`` intra-op threads: now if it is loaded, else through the OpenMP and
    MKL settings it reads when first imported (a fully cached rerun never imports it)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
        return
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)


def torch_threads(setting: Any) -> int:
    """Intra-op threads for this job: ``threads`` if set, else the cores available divided by
    the number of jobs the launcher runs at once, so parallel jobs never oversubscribe."""
    if setting is not None:
        return integer("threads", setting, minimum=1)
    from hydra.core.hydra_config import HydraConfig

    cores = available_cores()
    try:
        launcher = HydraConfig.get().launcher
    except ValueError:  # not inside a Hydra job
        return cores
    target = str(launcher.get("_target_", ""))
    if target.endswith("JoblibLauncher"):
        jobs = int(launcher.get("n_jobs") or 1)
        jobs = jobs if jobs > 0 else max(1, cores + 1 + jobs)  # joblib: -1 = one per core
        return max(1, cores // jobs)
    if target.endswith("LocalLauncher"):  # submitit_local: every job at once, cpus_per_task each
        return int(launcher.get("cpus_per_task") or 1)
    return cores  # one job at a time here, or a Slurm task whose affinity is its allocation


def _names(cfg: Any, choices: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """Model, mode, dataset and prompt names: the config group choices, else the nodes' own."""
    prompt = choices.get("prompt") or (cfg.get("prompt") or {}).get("strategy") or "direct"
    return (str(choices.get("model") or cfg.model.get("name") or "model"),
            str(choices.get("mode") or cfg.mode.get("name") or "mode"),
            str(choices.get("dataset") or cfg.dataset.get("name") or "dataset"), str(prompt))


def _meta(cfg: Any, resolved: dict[str, Any], choices: Mapping[str, Any], source: Any,
          probes: Sequence[Any], threads: int) -> Any:
    """What the summary and the trackers record about the run (secrets masked)."""
    from robustness.runner import RunMeta
    from robustness.tracking import redact

    model, mode, dataset, prompt = _names(cfg, choices)
    tags = (f"model:{model}", f"mode:{mode}", f"dataset:{dataset}", f"prompt:{prompt}",
            *(f"probe:{p.name}" for p in probes))
    config = redact(resolved)
    config["choices"] = dict(choices)
    return RunMeta(model=model, mode=mode, dataset=dataset, prompt=prompt, threads=threads,
                   name=redact_text(cfg.get("run_name") or f"{model}_{mode}_{dataset}"),
                   group=redact_text(cfg.get("name") or "default"),
                   tags=tuple(redact_text(t) for t in tags), config=config,
                   dataset_settings=redact(_jsonable(source.describe())))


def run_experiment(cfg: Any, echo: bool = True) -> dict[str, Any]:
    """Build every part from ``cfg`` and run one experiment; returns the summary (and, with
    ``echo``, prints the condition table). With ``plan`` set it returns the plan instead and
    asks the model nothing."""
    from attacks import build_probes
    from robustness.models.cache import CachedAdapter
    from robustness.runner import Runner
    from robustness.tracking import MultiTracker
    from robustness.tracking.local import LocalReport, format_console_table

    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    resolved = _resolved(cfg)
    check_targets(resolved)  # before anything is built: no class from outside the allowlist
    settings = run_settings(cfg)
    threads = torch_threads(cfg.get("threads"))
    use_threads(threads)
    choices = _choices()
    run_dir = _abspath(cfg.run_dir or _hydra_output_dir())

    source = build(cfg.dataset, "dataset")
    probes = build_probes(cfg.get("probe"))
    mode = build(cfg.mode, "mode")
    external = _build_optional(cfg, "logger")
    explainer = _build_optional(cfg, "explain")
    prompt = build_prompt(cfg.get("prompt"))
    adapter = build(cfg.model, "model")
    try:
        answers_dir = _abspath(cfg.cache.dir) / "answers"
        enabled = cfg.cache.enabled
        # the cache computes the model's identity: an unavailable device fails here, first
        adapter = CachedAdapter(adapter, answers_dir, enabled=enabled)
        mode.wrap_auxiliary(lambda inner: CachedAdapter(inner, answers_dir, enabled=enabled))
        benchmark = source.load()
        trackers = [LocalReport()] + ([external] if external is not None else [])
        runner = Runner(benchmark, adapter, mode, probes, run_dir=run_dir,
                        tracker=MultiTracker(trackers), settings=settings,
                        meta=_meta(cfg, resolved, choices, source, probes, threads),
                        prompt=prompt, explainer=explainer)
        if cfg.get("plan"):  # what the run would ask; nothing is asked, nothing written
            from robustness.plan import format_plan, plan_json, plan_run

            plan = plan_run(runner, explainer)
            print(plan_json(plan) if cfg.plan == "json" else format_plan(plan))
            return plan
        summary = runner.run()
    finally:
        adapter.close()
        for auxiliary in mode.auxiliary_adapters().values():
            auxiliary.close()
    if echo:
        print(format_console_table(summary))
        print(f"outputs: {run_dir}  (summary.json, report.md, predictions/)")
    return summary
