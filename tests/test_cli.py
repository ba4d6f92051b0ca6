from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from datetime import date
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.cli import main
from edge.core.errors import ImageError
from edge.demos import samples
from edge.demos.evidence import VARIANTS


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, Path]:
    files = {
        "astronaut": samples.astronaut(),
        "astronaut-enroll": VARIANTS["mirror"](samples.astronaut()),
        "cameraman": samples.cameraman(),
        "group": samples.group_scene(),
        "grey": np.full((300, 300, 3), 128, np.uint8),
    }
    paths = {}
    for name, image in files.items():
        paths[name] = tmp_path / f"{name}.png"
        cv2.imwrite(str(paths[name]), image)
    paths["corrupt"] = tmp_path / "corrupt.jpg"
    paths["corrupt"].write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return paths


def test_enroll_people_analyze(cli_env: Path, photos: dict[str, Path],
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["enroll", "--person", "E-1001", "--consent", "CF-2026-17",
                 "--consent-date", "2026-11-02", str(photos["astronaut-enroll"])]) == 0
    assert "enrolled E-1001: 1 new template(s), 1 in all" in capsys.readouterr().out
    assert main(["people"]) == 0
    listing = capsys.readouterr().out
    assert "E-1001" in listing and "CF-2026-17" in listing and "2026-11-02" in listing
    assert main(["analyze", "--json", str(photos["group"]), str(photos["astronaut"])]) == 0
    report = json.loads(capsys.readouterr().out)
    group_faces = report[0]["faces"]
    assert len(group_faces) == 3
    known = [f for f in group_faces if f["person"] == "E-1001"]
    assert len(known) == 1 and len(known[0]["vector"]) == 10
    assert all(f["vector"] is None for f in group_faces if f["person"] is None)
    assert report[1]["faces"][0]["person"] == "E-1001"
    assert main(["analyze", str(photos["cameraman"])]) == 0
    assert "unknown (dropped, nothing computed)" in capsys.readouterr().out


@pytest.mark.parametrize(("image", "message"), [
    ("grey", "grey.png: no face found; enrollment needs a photo with exactly one face"),
    ("group", "group.png: 3 faces found; enrollment needs a photo with exactly one face"),
    ("corrupt", "corrupt.jpg: not a readable image"),
])
def test_enroll_refuses_bad_photos_and_stores_nothing(cli_env: Path, photos: dict[str, Path],
                                                      capsys: pytest.CaptureFixture[str],
                                                      image: str, message: str) -> None:
    code = main(["enroll", "--person", "E-1", "--consent", "C", str(photos["astronaut"]),
                 str(photos[image])])
    assert code == 2
    assert message in capsys.readouterr().err
    assert main(["people"]) == 0
    assert "nobody is enrolled" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["enroll", "--person", "Jane Doe", "--consent", "C", "x.png"],
    ["enroll", "--person", "E-1", "--consent", "  ", "x.png"],
])
def test_enroll_refuses_bad_arguments(cli_env: Path, argv: list[str],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_user_mistakes_never_show_a_traceback(cli_env: Path, photos: dict[str, Path]) -> None:
    """Through the installed console script, as a technician would run it."""
    edge = Path(sys.executable).with_name("edge")
    done = subprocess.run([str(edge), "analyze", str(photos["corrupt"])], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert "not a readable image" in done.stderr and "Traceback" not in done.stderr


def test_missing_models_are_explained(cli_env: Path, photos: dict[str, Path],
                                      monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EDGE_MODELS__DIR", str(tmp_path / "no-models"))
    assert main(["analyze", str(photos["astronaut"])]) == 2
    err = capsys.readouterr().err
    assert "no model manifest" in err and "edge models prepare" in err


def test_demo_runs(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--photos"]) == 0
    out = capsys.readouterr().out
    assert "demo-astronaut" in out and "demo-cameraman" in out
    assert "4 faces analysed, 1 unknown dropped" in out
    assert not cli_env.exists()  # the demo wrote nothing to the real state directory


def test_global_options_go_before_or_after_the_subcommand(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "elsewhere"
    config = tmp_path / "edge.toml"
    config.write_text(f'[storage]\nstate_dir = "{state}"\n')
    for argv in (["--config", str(config), "people"], ["people", "--config", str(config)],
                 ["models", "verify", "-c", str(config), "--log-level", "ERROR"]):
        code = main(argv)
        out = capsys.readouterr()
        assert "unrecognized arguments" not in out.err, argv
        if argv[0] != "models":  # the file given after the subcommand is the one used
            assert code == 0 and f"no state store in {state}" in out.out
    assert not state.exists()  # and a read-only command creates no store


def test_help_reads_as_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "``" not in text and "command line" in text


def fake_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says width x height, with almost nothing behind it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


def test_an_oversized_image_is_refused_before_decoding(tmp_path: Path) -> None:
    from edge.vision.images import read_image

    with pytest.raises(ImageError, match="more than the 50 megapixels accepted"):
        read_image(fake_png(tmp_path / "bomb.png", 30000, 30000))
    with pytest.raises(ImageError, match=r"9000x9000 pixels \(81 megapixels\), more than"):
        read_image(fake_png(tmp_path / "large.png", 9000, 9000))
    # positive control: the same kind of file within the limit passes the size check and
    # reaches the decoder (which then finds the pixel data truncated)
    with pytest.raises(ImageError, match="not a readable image"):
        read_image(fake_png(tmp_path / "small.png", 640, 480))


@pytest.mark.parametrize(("argv", "message"), [
    (["--person", "E-100\n", "--consent", "C-1"], "--person 'E-100\\\\n'"),
    (["--person", "E-100", "--consent", "C-1\x1b[2J"], "--consent"),
])
def test_enrolment_refuses_hidden_characters(cli_env: Path, photos: dict[str, Path],
                                             argv: list[str], message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["enroll", *argv, str(photos["astronaut"])]) == 2
    err = capsys.readouterr().err
    assert message in err and "\x1b" not in err and "\n\n" not in err
    assert not cli_env.exists()


def test_nothing_printed_carries_a_control_character(cli_env: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Rows written before the checks existed, and alerts from the wire, print escaped."""
    from edge.central.alerts import AlertView
    from edge.store import Store

    with Store(cli_env) as store:
        store.enroll("E-7", "\x1b[2J\x1b[HAll clear", date(2026, 1, 1), [])
    assert main(["people"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[2J\\x1b[HAll clear" in out
    view = AlertView(out=io.StringIO())
    payload = {"kind": "risk", "schema_version": 1, "message_id": "a" * 32,
               "device": "d\x1b[2J", "site": "s", "person": "0" * 16,
               "hour_start": "2026-01-01T09:00:00Z", "hour_end": "2026-01-01T10:00:00Z",
               "level": 3, "label": "\x1b[2JAll clear", "anomaly": True}
    view.handle("edge/s/d/risk/" + "0" * 16, json.dumps(payload).encode())
    view.handle("edge/s/d/status", b"online\x1b[2J")
    shown = view.out.getvalue()  # type: ignore[attr-defined]
    assert len(view.alerts) == 1 and "\x1b" not in shown and "\\x1b[2JAll clear" in shown


def test_commands_find_the_installation_from_any_folder(tmp_path: Path,
                                                        models_dir: Path) -> None:
    """No config given, run from an unrelated folder: the app's own models are found,
    and a read-only command leaves no ./state behind."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("EDGE_") and k != "STATE_DIRECTORY"}
    edge = Path(sys.executable).with_name("edge")
    verify = subprocess.run([str(edge), "models", "verify"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stderr
    assert "retinaface-mnet025" in verify.stdout
    people = subprocess.run([str(edge), "people"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert people.returncode == 0, people.stderr
    assert list(tmp_path.iterdir()) == []
