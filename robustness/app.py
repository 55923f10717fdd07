"""The Hydra app behind ``robustness [overrides]``: compose ``conf/``, build the parts, run.

``run_app(argv)`` runs Hydra on ``argv`` (``-m`` sweeps, ``--cfg``, ``--help``, overrides all
work) with ``conf/`` at the repository root. Each job builds the benchmark source, the model
(wrapped in the answer cache), the mode, the probes and the trackers from their config groups
with ``hydra.utils.instantiate`` and hands them to :class:`robustness.runner.Runner`.

Exit codes: 0 ok; 2 a user or config error (one line on stderr, per job in a sweep); 1 a crash;
130 interrupted. Jobs report their outcome through a small status file so that sweeps run by
out-of-process launchers (joblib) still give the right exit code.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from robustness.errors import ConfigError, UserError

log = logging.getLogger("robustness")

CONF_ENV = "ROBUSTNESS_CONF_DIR"
STATUS_ENV = "ROBUSTNESS_JOB_STATUS_FILE"
# Launcher choice -> (module it needs, pip extra that provides it)
LAUNCHER_PLUGINS = {
    "joblib": ("hydra_plugins.hydra_joblib_launcher", "joblib"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
}


def config_dir() -> Path:
    """``conf/`` at the repository root (or ``$ROBUSTNESS_CONF_DIR``), as an absolute path."""
    override = os.environ.get(CONF_ENV)
    path = Path(override) if override else Path(__file__).resolve().parent.parent / "conf"
    if not (path / "config.yaml").is_file():
        where = f"${CONF_ENV}={override}" if override else "the repository root"
        raise UserError(f"{path / 'config.yaml'}: config folder not found at {where} "
                        "(run from a source checkout installed with `pip install -e .`, "
                        f"or set {CONF_ENV})")
    return path.resolve()


def _check_launcher(argv: list[str]) -> None:
    """A missing launcher plugin is one line naming the extra to install, not a traceback."""
    import importlib.util

    for arg in argv:
        if arg.startswith("hydra/launcher="):
            choice = arg.split("=", 1)[1]
            need = LAUNCHER_PLUGINS.get(choice)
            if need and importlib.util.find_spec(need[0]) is None:
                raise ConfigError(f"hydra/launcher={choice}: its plugin is not installed "
                                  f"(pip install -e '.[{need[1]}]')")


def quiet_schema_matching() -> None:
    """Our launcher files share their plugin's name so ``hydra/launcher=joblib`` keeps working;
    Hydra then validates them against the plugin's schema (good) and warns (noise)."""
    import warnings

    warnings.filterwarnings("ignore", message=r"(?s).*validated against ConfigStore schema",
                            category=UserWarning)


class _StderrGate:
    """Holds what Hydra writes to stderr until the first job starts.

    Hydra reports a bad command line or config in several lines (search path, a hint about
    HYDRA_FULL_ERROR); we turn that into the project's one line. Once a job runs, everything
    passes straight through (progress bars, warnings).
    """

    def __init__(self, real: Any) -> None:
        self.real = real
        self.buffer: list[str] = []
        self.open = False

    def write(self, text: str) -> int:
        if self.open:
            return self.real.write(text)
        self.buffer.append(text)
        return len(text)

    def flush(self) -> None:
        if self.open:
            self.real.flush()

    def isatty(self) -> bool:
        return self.real.isatty()

    def fileno(self) -> int:
        return self.real.fileno()

    def release(self) -> None:
        if not self.open:
            self.open = True
            self.real.write("".join(self.buffer))
            self.buffer.clear()

    def one_line(self) -> str:
        """The held text as one line, without Hydra's search-path listing and hints."""
        kept: list[str] = []
        options: list[str] | None = None
        section = ""
        for line in "".join(self.buffer).splitlines():
            text = line.strip()
            if text.startswith("Config search path"):
                section = "search"
            elif text.startswith("Available options"):
                section, options = "options", []
                kept.append(text.rstrip(":") + ": {options}")
            elif section and line.startswith(("\t", " ")) and text:
                if section == "options" and options is not None:
                    options.append(text)
            elif text and "HYDRA_FULL_ERROR" not in text and "ConfigStore schema" not in text:
                section = ""
                kept.append(text.rstrip("."))
        message = "; ".join(kept)
        return message.replace("{options}", ", ".join(options or []))


_GATE: _StderrGate | None = None


def _open_stderr() -> None:
    if _GATE is not None:
        _GATE.release()


def _report_status(kind: str) -> None:
    path = os.environ.get(STATUS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(kind + "\n")


def redact_overrides(args: list[str]) -> list[str]:
    """Command-line overrides with secret values hidden (``model.api_key=***``)."""
    from robustness.tracking.redact import redact

    return [redact(arg) for arg in args]


def _redact_hydra_files() -> None:
    """Hydra saved the composed config and the overrides in ``<run_dir>/.hydra``: hide secrets."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from robustness.tracking.redact import redact

    try:
        hc = HydraConfig.get()
    except ValueError:
        return
    if not hc.output_subdir:
        return
    folder = Path(hc.runtime.output_dir) / hc.output_subdir
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        path = folder / name
        if not path.is_file():
            continue
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        clean = redact(data)
        if clean != data:
            path.write_text(OmegaConf.to_yaml(OmegaConf.create(clean)), encoding="utf-8")


def _task(cfg: Any) -> int:
    """One Hydra job: build and run the experiment; user errors are one line, exit 2."""
    _open_stderr()
    saved_argv = sys.argv
    sys.argv = [sys.argv[0], *redact_overrides(sys.argv[1:])]  # W&B records the command line
    try:
        _redact_hydra_files()
        run_experiment(cfg)
    except KeyboardInterrupt:
        _report_status("interrupted")
        raise
    except Exception as exc:
        err = _user_error(exc)
        if err is None:
            _report_status("crash")
            raise
        print(f"robustness: error: {err}", file=sys.stderr)
        _report_status("user_error")
        return err.exit_code
    finally:
        sys.argv = saved_argv
    _report_status("ok")
    return 0


def _user_error(exc: BaseException) -> UserError | None:
    """The user error behind ``exc``: itself, or the cause Hydra's ``instantiate`` wrapped (a
    component's constructor rejecting a config value)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, UserError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def run_app(argv: list[str]) -> int:
    """Run the Hydra app on ``argv`` and return the process exit code."""
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    conf = config_dir()
    _check_launcher(argv)
    quiet_schema_matching()
    fd, status_file = tempfile.mkstemp(prefix="robustness-jobs-", suffix=".txt")
    os.close(fd)
    global _GATE
    saved_argv, saved_status, saved_stderr = sys.argv, os.environ.get(STATUS_ENV), sys.stderr
    sys.argv = ["robustness", *argv]
    os.environ[STATUS_ENV] = status_file
    if not os.environ.get("HYDRA_FULL_ERROR"):
        _GATE = _StderrGate(saved_stderr)
        sys.stderr = _GATE  # type: ignore[assignment]
    code = 0
    try:
        main = hydra.main(config_path=str(conf), config_name="config", version_base=None)(_task)
        try:
            main()
        except (HydraException, OmegaConfBaseException) as err:  # --help / --cfg paths
            message = " ".join(str(err).split("Config search path")[0].split())
            raise ConfigError(message or type(err).__name__) from None
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            if code == 1 and not Path(status_file).read_text().strip():
                code = 2  # Hydra rejected the command line or config before any job ran
                if _GATE is not None and not _GATE.open:
                    message = _GATE.one_line()
                    _GATE.buffer.clear()
                    raise ConfigError(message or "invalid command line or config") from None
        outcomes = Path(status_file).read_text().split()
    finally:
        if _GATE is not None:
            _GATE.release()
        sys.stderr, _GATE = saved_stderr, None
        sys.argv = saved_argv
        if saved_status is None:
            os.environ.pop(STATUS_ENV, None)
        else:
            os.environ[STATUS_ENV] = saved_status
        Path(status_file).unlink(missing_ok=True)
    if "interrupted" in outcomes:
        raise KeyboardInterrupt
    if code == 0 and "crash" in outcomes:
        code = 1
    if code in (0, 1) and "user_error" in outcomes:
        code = 2
    return code


# ----------------------------------------------------------------------------- building


def _choices() -> dict[str, Any]:
    from hydra.core.hydra_config import HydraConfig

    try:
        return dict(HydraConfig.get().runtime.choices)
    except ValueError:  # not inside a Hydra job (tests compose configs directly)
        return {}


def _abspath(path: str | os.PathLike) -> Path:
    return Path(os.path.expanduser(str(path))).resolve()


def build_prompt(prompt_cfg: Any) -> Any:
    """The run's base prompting strategy (``prompt`` group), or None for the mode's default."""
    from hydra.utils import instantiate

    if not prompt_cfg:
        return None
    if "_target_" not in prompt_cfg:
        raise ConfigError("prompt: config needs a _target_ (e.g. robustness.modes.prompts."
                          "PromptStrategy)")
    return instantiate(prompt_cfg, _convert_="all")


def run_experiment(cfg: Any) -> dict[str, Any]:
    """Build every part from ``cfg`` and run one experiment; returns the summary."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from attacks import build_probes
    from robustness.models.cache import CachedAdapter
    from robustness.runner import RunMeta, Runner, RunSettings
    from robustness.tracking import MultiTracker, redact
    from robustness.tracking.local import LocalReport, format_console_table

    for noisy in ("httpx", "urllib3", "PIL", "matplotlib", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    choices = _choices()
    run_dir = _abspath(cfg.get("run_dir") or _hydra_output_dir())
    model_name = str(choices.get("model") or cfg.model.get("name") or "model")
    mode_name = str(choices.get("mode") or cfg.mode.get("name") or "mode")
    dataset_name = str(choices.get("dataset") or cfg.dataset.get("name") or "dataset")
    prompt_name = str(choices.get("prompt") or (cfg.get("prompt") or {}).get("strategy") or "direct")

    source = instantiate(cfg.dataset, _convert_="all")
    probes = build_probes(cfg.get("probe"))
    mode = instantiate(cfg.mode, _convert_="all")
    logger_cfg = cfg.get("logger")
    external = instantiate(logger_cfg, _convert_="all") if logger_cfg and "_target_" in logger_cfg \
        else None
    explain_cfg = cfg.get("explain")
    explainer = instantiate(explain_cfg, _convert_="all") \
        if explain_cfg and "_target_" in explain_cfg else None
    prompt = build_prompt(cfg.get("prompt"))

    benchmark = source.load()
    adapter = instantiate(cfg.model, _convert_="all")
    cache_cfg = cfg.get("cache") or {}
    try:
        answers_dir = _abspath(cache_cfg.get("dir", ".cache/robustness")) / "answers"
        enabled = bool(cache_cfg.get("enabled", True))
        adapter = CachedAdapter(adapter, answers_dir, enabled=enabled)
        _cache_judge(mode, answers_dir, enabled)
        config = redact(OmegaConf.to_container(cfg, resolve=True))
        config["choices"] = choices
        tags = (f"model:{model_name}", f"mode:{mode_name}", f"dataset:{dataset_name}",
                f"prompt:{prompt_name}", *(f"probe:{p.name}" for p in probes))
        meta = RunMeta(model=model_name, mode=mode_name, dataset=dataset_name, prompt=prompt_name,
                       name=cfg.get("run_name") or f"{model_name}_{mode_name}_{dataset_name}",
                       group=str(cfg.get("name") or "default"), tags=tags, config=config,
                       dataset_settings=_jsonable(source.describe()))
        settings = RunSettings(batch_pairs=int(cfg.get("batch_pairs", 16)),
                               seed=int(cfg.get("seed", 0)),
                               examples=int(cfg.get("examples", 2)),
                               resamples=int(cfg.get("resamples", 2000)),
                               progress=cfg.get("progress"))
        trackers = [LocalReport()] + ([external] if external is not None else [])
        runner = Runner(benchmark, adapter, mode, probes, run_dir=run_dir,
                        tracker=MultiTracker(trackers), settings=settings, meta=meta,
                        prompt=prompt, explainer=explainer)
        summary = runner.run()
    finally:
        adapter.close()
        judge = getattr(getattr(mode, "judge", None), "adapter", None)
        if judge is not None and hasattr(judge, "close"):
            judge.close()
    print(format_console_table(summary))
    print(f"outputs: {run_dir}  (summary.json, report.md, predictions/)")
    return summary


def _cache_judge(mode: Any, cache_dir: Path, enabled: bool = True) -> None:
    """FF's judge is a model too: its answers go through the same cache."""
    from robustness.models.base import ModelAdapter
    from robustness.models.cache import CachedAdapter

    judge = getattr(mode, "judge", None)
    for holder, attr in ((mode, "judge"), (judge, "adapter")):
        inner = getattr(holder, attr, None) if holder is not None else None
        if isinstance(inner, ModelAdapter) and not isinstance(inner, CachedAdapter):
            setattr(holder, attr, CachedAdapter(inner, cache_dir, enabled=enabled))


def _jsonable(obj: Any) -> Any:
    import json

    return json.loads(json.dumps(obj, default=str))


def _hydra_output_dir() -> str:
    from hydra.core.hydra_config import HydraConfig

    try:
        return HydraConfig.get().runtime.output_dir
    except ValueError:
        raise ConfigError("run_dir: not inside a Hydra job; set run_dir=DIR") from None
