from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge.cli import main
from edge.core.errors import ConfigError
from edge.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(text)
    return path


def test_documented_example_is_valid_and_matches_defaults() -> None:
    example = load_settings(REPO / "config" / "edge.toml")
    assert example.model_dump(exclude={"storage"}) == Settings().model_dump(exclude={"storage"})


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[mqtt]\nport = 1884\nhost = "broker"\n')
    monkeypatch.setenv("EDGE_MQTT__PORT", "8883")
    settings = load_settings(path)
    assert settings.mqtt.port == 8883
    assert settings.mqtt.host == "broker"


def test_unrelated_edge_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_CONFIG", "/nonexistent.toml")
    assert load_settings(None, use_default_path=False).device.id == "edge-dev"


@pytest.mark.parametrize(("text", "expected"), [
    ("[mqtt]\nport = 70000\n", "mqtt.port = 70000: Input should be less than or equal to 65535"),
    ('[models]\nbackend = "trt"\n', "models.backend = 'trt': Input should be 'onnxruntime' or "
                                    "'tensorrt'"),
    ('[models]\nbakend = "onnxruntime"\n', "models.bakend: unknown key; allowed here: backend,"),
    ('[device]\ntimezone = "Mars/Base"\n', "device.timezone = 'Mars/Base': unknown time zone"),
    ("[detection]\ninput_width = 650\n", "detection.input_width = 650: Input should be a "
                                         "multiple of 32"),
    ("[analytics]\nlevel_cuts = [5, 3, 1]\n", "analytics.level_cuts = [5, 3, 1]: must be three "
                                              "increasing levels"),
    ('[mqtt]\nprotocol = "4"\n', "mqtt.protocol = '4': Input should be '5' or '3.1.1'"),
    ("[nonsense]\nx = 1\n", "nonsense: unknown key; allowed here: analytics, camera,"),
    ("[central]\nlisten_port = 70000\n", "central.listen_port = 70000: Input should be less "
                                          "than or equal to 65535"),
    ('[central]\nshare_group = "a/b"\n', "central.share_group = 'a/b': String should match"),
    ('[central]\nhttps_cert_file = "config/edge.toml"\n', "https_cert_file and "
                                                          "https_key_file go together"),
])
def test_bad_value_is_one_line_naming_key_file_and_allowed(tmp_path: Path, text: str,
                                                            expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_CAMERA__SAMPLE_EVERY", "0")
    with pytest.raises(ConfigError, match=r"^environment variable EDGE_CAMERA__SAMPLE_EVERY: "
                                          r"camera.sample_every = '0': Input should be greater"):
        load_settings(None, use_default_path=False)


def test_several_problems_one_line_each(tmp_path: Path) -> None:
    path = write(tmp_path, "[mqtt]\nport = 0\nkeepalive = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert len(str(caught.value).splitlines()) == 2


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[mqtt\nport = 1\n")
    with pytest.raises(ConfigError, match=rf"^{path}: not valid TOML: .*line 1"):
        load_settings(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "absent.toml")


def test_config_check_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(REPO / "config" / "edge.toml")]) == 0
    assert "is valid" in capsys.readouterr().out
    bad = write(tmp_path, "[mqtt]\nport = -1\n")
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: mqtt.port = -1")
    assert "Traceback" not in err


def run_without_root_privileges(*argv: str) -> subprocess.CompletedProcess[str]:
    """uid 0 without the capabilities that bypass file permissions: EACCES is real."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop the file-permission capabilities")
    edge = Path(sys.executable).with_name("edge")
    return subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                           str(edge), *argv], capture_output=True, text=True, timeout=120)


def test_an_unreadable_settings_file_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text('[device]\nid = "lobby"\n')
    assert run_without_root_privileges("config", "check", str(config)).returncode == 0
    config.chmod(0o000)  # positive control above: the same file, readable, is fine
    result = run_without_root_privileges("config", "check", str(config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"error: {config}: cannot be read by this user (permission denied)" in result.stderr


def test_tls_files_behind_a_closed_folder_are_named(tmp_path: Path) -> None:
    """The TLS folder made 0700 root (as the installer used to): one line, no traceback."""
    tls = tmp_path / "tls"
    tls.mkdir(mode=0o700)
    (tls / "ca.pem").write_text("x")
    (tls / "ca.pem").chmod(0o600)
    tls.chmod(0o000)
    config = tmp_path / "edge.toml"
    config.write_text(f'[mqtt]\nca_file = "{tls / "ca.pem"}"\n')
    result = run_without_root_privileges("config", "check", str(config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "mqtt.ca_file" in result.stderr and "permission denied" in result.stderr


@pytest.mark.parametrize(("toml", "message"), [
    ("[camera]\nstall_s = inf", "camera.stall_s = inf: Input should be a finite number"),
    ("[camera]\nreplay_speed = inf", "camera.replay_speed = inf"),
    ("[camera]\nreplay_speed = nan", "camera.replay_speed = nan"),
    ("[mqtt]\noutbox_max_messages = 1e19", "mqtt.outbox_max_messages"),
    ("[mqtt]\noutbox_max_messages = 20000000", "less than or equal to 10000000"),
    ('[mqtt]\nhost = ""', "mqtt.host = ''"),
    ('[mqtt]\nhost = "broker; rm -rf /"', "mqtt.host"),
    ("[mqtt]\nstats_interval_s = 1e-6", "greater than or equal to 1"),
    ("[mqtt]\nrefused_retry_s = 1e20", "mqtt.refused_retry_s"),
    ('[deployment]\npurpose = "research"\nlegal_basis = "   "', "only white space"),
    ('[storage]\nstate_dir = ""', "storage.state_dir = '': must name a folder"),
    ("[identity]\nrecheck_seconds = 1e30", "identity.recheck_seconds"),
])
def test_what_the_check_accepts_the_run_can_run(tmp_path: Path, toml: str,
                                                message: str) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(toml + "\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert message in str(caught.value)


@pytest.mark.parametrize(("toml", "keys", "secrets"), [
    ("[mqtt]\npassword = 918273645\n", ["mqtt.password"], ["918273645"]),
    ("[central]\ndatabase = 5551234\npassword = 918273645\n",
     ["central.database", "central.password"], ["5551234", "918273645"]),
])
def test_a_secret_is_never_echoed(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  toml: str, keys: list[str], secrets: list[str]) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(toml)
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert all(key in err for key in keys) and not any(secret in err for secret in secrets)


def test_the_check_says_when_run_would_refuse(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "edge.toml"
    path.write_text('[device]\nid = "lobby"\n')
    assert main(["config", "check", str(path)]) == 0
    assert "`edge run` will refuse" in capsys.readouterr().out
    path.write_text('[deployment]\npurpose = "safety"\nlegal_basis = "Art. 9(2)(b)"\n')
    assert main(["config", "check", str(path)]) == 0
    assert "refuse" not in capsys.readouterr().out  # positive control: declared, no note
