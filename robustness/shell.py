"""The Hydra process shell behind ``robustness [overrides]``: argv in, exit code out.

``run_app(argv)`` runs Hydra on ``argv`` (``-m`` sweeps, ``--cfg``, ``--help``, overrides all
work) over the toolkit's ``conf/``. It turns Hydra's multi-line complaints into one line, hides
secrets in the ``.hydra/`` files it saved, and hands each job's config to
:func:`robustness.experiment.run_experiment` (the composition root).

Exit codes: 0 ok; 2 a user or config error (one line on stderr, per job in a sweep); 1 a crash;
130 interrupted. Jobs report their outcome through a small status file so that sweeps run by
out-of-process launchers (joblib) still give the right exit code.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from robustness.errors import ConfigError, UserError
from robustness.redaction import install_handler_redaction, redact_text

log = logging.getLogger("robustness")

STATUS_ENV = "ROBUSTNESS_JOB_STATUS_FILE"
# Launcher choice -> (module it needs, pip extra that provides it)
# Command-line choice -> (the Hydra plugin module it needs, the pip extra that provides it)
PLUGINS = {
    "hydra/launcher=joblib": ("hydra_plugins.hydra_joblib_launcher", "joblib"),
    "hydra/launcher=submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "hydra/launcher=submitit_local": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "hydra/sweeper=optuna": ("hydra_plugins.hydra_optuna_sweeper", "optuna"),
    "hparams_search=": ("hydra_plugins.hydra_optuna_sweeper", "optuna"),
}


def _check_plugins(argv: list[str]) -> None:
    """A missing launcher or sweeper plugin is one line naming the extra to install."""
    import importlib.util

    for arg in argv:
        for prefix, (module, extra) in PLUGINS.items():
            if (arg == prefix or (prefix.endswith("=") and arg.startswith(prefix))) \
                    and importlib.util.find_spec(module) is None:
                raise ConfigError(f"{arg}: its Hydra plugin is not installed "
                                  f"(pip install 'mediconfusion-robustness[{extra}]')")


def quiet_schema_matching() -> None:
    """Our launcher files share their plugin's name so ``hydra/launcher=joblib`` keeps working;
    Hydra then validates them against the plugin's schema (good) and warns (noise)."""
    import warnings

    warnings.filterwarnings("ignore", message=r"(?s).*validated against ConfigStore schema",
                            category=UserWarning)


# text that may carry a secret: an assignment, a URL, a key-shaped token
_MAY_HOLD_SECRET = re.compile(r"=|://|sk-|AIza|[Bb]earer|hf_|gh[po]_")


class _StderrGate:
    """Holds what Hydra writes to stderr until the first job starts, and masks secrets in all
    of it (Hydra echoes a failed job's overrides, ``model.base_url=https://user:TOKEN@…``).

    Hydra reports a bad command line or config in several lines (search path, a hint about
    HYDRA_FULL_ERROR); we turn that into the project's one line. Once a job runs, everything
    passes straight through (progress bars, warnings).
    """

    def __init__(self, real: Any, hold: bool = True) -> None:
        self.real = real
        self.buffer: list[str] = []
        self.open = not hold  # HYDRA_FULL_ERROR: pass everything through at once (still masked)

    def write(self, text: str) -> int:
        if self.open:
            self.real.write(redact_text(text) if _MAY_HOLD_SECRET.search(text) else text)
            return len(text)
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
            self.real.write(redact_text("".join(self.buffer)))
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
        return redact_text(message.replace("{options}", ", ".join(options or [])))


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
    from robustness.redaction import redact

    return [redact(arg) for arg in args]


def _redact_hydra_files() -> None:
    """Hydra saved the composed config and the overrides in ``<run_dir>/.hydra``: hide secrets."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from robustness.redaction import redact

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


def _task(cfg: Any) -> float | None:
    """One Hydra job: build and run the experiment; returns the objective's value for a
    sweeper (None when none is set or the job failed). User errors are one line; the exit
    code travels through the status file."""
    _open_stderr()
    install_handler_redaction()  # Hydra configured the job's log handlers (robustness.log)
    saved_argv = sys.argv
    sys.argv = [sys.argv[0], *redact_overrides(sys.argv[1:])]  # W&B records the command line
    try:
        _redact_hydra_files()
        from robustness.experiment import run_experiment
        from robustness.objective import objective_value

        summary = run_experiment(cfg)
        value = None if cfg.get("plan") else objective_value(summary, cfg.get("objective"))
    except KeyboardInterrupt:
        _report_status("interrupted")
        raise
    except Exception as exc:
        err = _user_error(exc)
        if err is None:
            _report_status("crash")
            raise
        print(redact_text(f"robustness: error: {err}"), file=sys.stderr)
        _report_status("user_error")
        return None
    finally:
        sys.argv = saved_argv
    _report_status("ok")
    return value


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

    from robustness.configs import config_dir

    conf = config_dir()
    _check_plugins(argv)
    quiet_schema_matching()
    fd, status_file = tempfile.mkstemp(prefix="robustness-jobs-", suffix=".txt")
    os.close(fd)
    global _GATE
    saved_argv, saved_status, saved_stderr = sys.argv, os.environ.get(STATUS_ENV), sys.stderr
    sys.argv = ["robustness", *argv]
    os.environ[STATUS_ENV] = status_file
    _GATE = _StderrGate(saved_stderr, hold=not os.environ.get("HYDRA_FULL_ERROR"))
    sys.stderr = _GATE  # type: ignore[assignment]
    code = 0
    try:
        main = hydra.main(config_path=str(conf), config_name="config", version_base=None)(_task)
        try:
            main()
        except (HydraException, OmegaConfBaseException) as err:  # --help / --cfg paths
            message = " ".join(str(err).split("Config search path")[0].split())
            raise ConfigError(redact_text(message) or type(err).__name__) from None
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
