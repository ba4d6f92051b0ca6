from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from edge.core.logs import configure_logging, get_logger


def test_json_lines_carry_the_device_id(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("entrance-07", json=True)
    get_logger("test").info("camera_started", fps=24)
    record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert record["device_id"] == "entrance-07"
    assert (record["event"], record["fps"], record["level"]) == ("camera_started", 24, "info")
    assert record["timestamp"].endswith("Z")


def test_json_by_default_when_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("box-1")  # pytest's captured stderr is not a tty
    get_logger("test").warning("stalled")
    assert json.loads(capsys.readouterr().err.strip())["device_id"] == "box-1"


def test_readable_lines_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("box-2", json=False)
    get_logger("test").info("ready", people=3)
    line = capsys.readouterr().err
    assert "ready" in line and "device_id=box-2" in line and "people=3" in line


def test_level_filter(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("box-3", level="WARNING", json=True)
    get_logger("test").info("quiet")
    assert capsys.readouterr().err == ""


def test_cli_log_lines_name_the_configured_device(cli_env, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from edge.cli import main
    from edge.demos import samples

    monkeypatch.setenv("EDGE_DEVICE__ID", "lobby-2")
    photo = cli_env.parent / "astronaut.png"
    import cv2

    cv2.imwrite(str(photo), samples.astronaut())
    assert main(["--log-level", "INFO", "enroll", "--person", "E-9", "--consent", "C-9",
                 str(photo)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert {line["event"] for line in lines} >= {"models_loaded", "enrolled"}
    assert all(line["device_id"] == "lobby-2" for line in lines)
    assert not any("E-9" in json.dumps(line) for line in lines)  # no person ids in logs


JOURNAL_CHILD = """
import os, sys
info = os.fstat(sys.stderr.fileno())
if sys.argv[1] == "journal":
    os.environ["JOURNAL_STREAM"] = f"{info.st_dev}:{info.st_ino}"
elif sys.argv[1] == "elsewhere":  # set for another stream: a redirected stderr
    os.environ["JOURNAL_STREAM"] = f"{info.st_dev}:{info.st_ino + 1}"
from edge.core.logs import configure_logging, get_logger
configure_logging("box-9", "DEBUG")
log = get_logger("t")
log.debug("d"); log.info("i"); log.warning("w"); log.error("e"); log.critical("c")
"""


@pytest.mark.parametrize("where", ["journal", "elsewhere", "unset"])
def test_journald_gets_each_lines_priority(where: str) -> None:
    """Under journald (JOURNAL_STREAM names our stderr) each line starts with its syslog
    priority, so `journalctl -p err` finds the errors; anywhere else lines stay plain JSON."""
    result = subprocess.run([sys.executable, "-c", JOURNAL_CHILD, where], text=True,
                            capture_output=True, timeout=60,
                            env={k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"})
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 5, result.stderr
    if where == "journal":
        assert [line[:3] for line in lines] == ["<7>", "<6>", "<4>", "<3>", "<2>"]
        assert json.loads(lines[3][3:])["event"] == "e"
    else:
        assert [json.loads(line)["level"] for line in lines] == [
            "debug", "info", "warning", "error", "critical"]
