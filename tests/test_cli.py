from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.cli import main
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
