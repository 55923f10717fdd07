"""The security model (docs/security.md): no code runs that the user did not ask for, and no
secret reaches a log, a result file, the terminal or W&B."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from robustness.cli import main
from robustness.errors import ConfigError
from robustness.redaction import redact, redact_text
from robustness.targets import check_targets
from tests.helpers.runner_scripted import write_benchmark
from tests.robustness.test_runner import cli_args

URL_PASSWORD = "UsErPaSsWoRd9876"
QUERY_TOKEN = "QuErYtOkEn54321"
SECRET_URL = f"https://alice:{URL_PASSWORD}@example.invalid/v1?api_key={QUERY_TOKEN}&page=2"


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    return write_benchmark(tmp_path_factory.mktemp("bench"), n_pairs=4)


# ------------------------------------------------------------------------------ secrets


@pytest.mark.parametrize("text, hidden", [
    (SECRET_URL, (URL_PASSWORD, QUERY_TOKEN)),
    ("http://tok3nOnlyUser1@host/x", ("tok3nOnlyUser1",)),
    ("s3://bucket/x?X-Amz-Signature=abcdef123456&X-Amz-Credential=AKIAXYZ", ("abcdef123456",
                                                                             "AKIAXYZ")),
    ("+model.api_key=sk-abcdefghijklmnop1234", ("sk-abcdefghijklmnop1234",)),
    ("['model.base_url=https://u:p4ssw0rdLong@h/v1', 'x=1']", ("p4ssw0rdLong",)),
])
def test_url_user_info_and_secret_query_parameters_are_masked(text, hidden):
    clean = redact_text(text)
    assert all(secret not in clean for secret in hidden), clean
    assert "***" in clean


def test_ordinary_urls_and_settings_survive():
    text = "https://example.org/v1?page=2&lang=en dataset.pairs=16 model.max_tokens=5"
    assert redact_text(text) == text
    cfg = {"model": {"base_url": SECRET_URL, "api_key_env": "OPENAI_API_KEY"}, "seed": 3}
    out = redact(cfg)
    assert out["model"]["api_key_env"] == "OPENAI_API_KEY" and out["seed"] == 3
    assert URL_PASSWORD not in str(out) and QUERY_TOKEN not in str(out)


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_a_secret_url_in_any_config_value_reaches_no_file_log_or_terminal(tmp_path, bench,
                                                                          capfd):
    code = main(cli_args(tmp_path, bench, "probe=[option_swap]", "logger=wandb",
                         f"run_name='{SECRET_URL}'", "explain=none"))
    assert code == 0
    run = tmp_path / "run"
    assert (run / ".hydra" / "config.yaml").is_file() and (run / "wandb").is_dir()
    written = _all_bytes(run)  # .hydra/*.yaml, robustness.log, summary.json, W&B files
    out, err = capfd.readouterr()
    for secret in (URL_PASSWORD, QUERY_TOKEN):
        assert secret.encode() not in written, secret
        assert secret not in out + err


def test_hydras_echo_of_a_failed_job_masks_secrets(tmp_path, bench):
    """A job that crashes makes Hydra print every override: the secret must not be among them."""
    env_script = (
        "import sys\n"
        "from robustness.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n")
    args = cli_args(tmp_path, bench, "probe=[]", "logger=none", "explain=none",
                    "+model.fail_with=RuntimeError", f"+model.base_url='{SECRET_URL}'")
    proc = subprocess.run([sys.executable, "-c", env_script, *args], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2  # an unknown setting: one line naming the group
    assert URL_PASSWORD not in proc.stdout + proc.stderr
    assert QUERY_TOKEN not in proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "model:" in proc.stderr


# ------------------------------------------------------------------------------ targets


@pytest.mark.parametrize("target", ["builtins.open", "shutil.copyfile", "torch.load",
                                    "numpy.load", "os.system", "robustnessx.evil"])
def test_a_target_outside_the_toolkit_is_refused_before_anything_runs(tmp_path, bench, capsys,
                                                                      target):
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    code = main(cli_args(tmp_path, bench, "probe=[option_swap]", "logger=none", "explain=none",
                         f"probe.option_swap._target_={target}",
                         f"+probe.option_swap.file={victim}", "+probe.option_swap.mode=w"))
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"probe.option_swap._target_: '{target}'" in err[0]
    assert victim.read_text() == "keep me"  # nothing was called
    assert not (tmp_path / "run" / "summary.json").exists()


def test_nested_and_interpolated_targets_are_checked(monkeypatch):
    monkeypatch.delenv("ROBUSTNESS_TRUSTED_MODULES", raising=False)
    check_targets({"model": {"_target_": "robustness.models.hf.HFAdapter",
                             "model_id": {"_target_": "robustness.reference.checkpoint_path"}}})
    with pytest.raises(ConfigError, match=r"mode\.judge\.adapter\._target_"):
        check_targets({"mode": {"judge": {"adapter": {"_target_": "subprocess.run"}}}})
    with pytest.raises(ConfigError, match=r"probe\[0\]\._target_"):
        check_targets({"probe": [{"_target_": "pickle.loads"}]})


def test_trusted_and_plugin_modules_are_accepted(monkeypatch):
    from robustness import targets

    monkeypatch.setenv("ROBUSTNESS_TRUSTED_MODULES", "my_probes, my_company.vlm")
    monkeypatch.setattr(targets, "plugin_modules", lambda: ("acme_plugin",))
    check_targets({"a": {"_target_": "my_probes.Invert"},
                   "b": {"_target_": "my_company.vlm.adapters.Adapter"},
                   "c": {"_target_": "acme_plugin.Probe"}})
    with pytest.raises(ConfigError):
        check_targets({"a": {"_target_": "my_company.other.Thing"}})
    with pytest.raises(ConfigError):  # a prefix of a name is not its module
        check_targets({"a": {"_target_": "my_probesx.Thing"}})


def test_train_reference_checks_targets_too(capsys, monkeypatch):
    monkeypatch.delenv("ROBUSTNESS_TRUSTED_MODULES", raising=False)
    assert main(["train-reference", "modes.mc._target_=builtins.exec", "--cfg"]) == 2
    assert "modes.mc._target_: 'builtins.exec'" in capsys.readouterr().err


def test_remote_code_loading_logs_one_warning_naming_what_runs(tiny_llava, caplog):
    from robustness.models.hf import HFAdapter

    adapter = HFAdapter(str(tiny_llava), device="cpu", dtype="float32", local_files_only=True,
                        trust_remote_code=True, family="llava")
    with caplog.at_level("WARNING", logger="robustness.models.hf"):
        adapter.load()
    adapter.close()
    lines = [r.getMessage() for r in caplog.records if "runs its own code" in r.getMessage()]
    assert len(lines) == 1 and str(tiny_llava) in lines[0] and "local folder, content" in lines[0]
