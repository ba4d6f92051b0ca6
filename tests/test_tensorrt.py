"""TensorRT, as far as it can be tested without a GPU: compatibility decisions, calibration
batching, the fallback, `doctor` and the CLI errors. The engine itself runs only where
TensorRT and a GPU are (marked `gpu`)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.cli import main
from edge.core.errors import EdgeError, ModelError
from edge.core.manifest import EngineBuild, Manifest, ModelEntry, load_manifest, save_manifest
from edge.demos import samples
from edge.inference import open_model
from edge.inference.tensorrt_compat import (
    RuntimeInfo,
    engine_for,
    incompatibilities,
    l4t_release,
    tensorrt_installed,
)
from edge.models.build_engine import build_engine_command, profile_shapes
from edge.models.calibration import CalibrationBatches
from edge.vision.loader import VisionModels
from tests.models_support import linked_models

ORIN = RuntimeInfo("10.3.0", "Orin", "8.7", "R36.3.0")


def engine_entry(manifest: Manifest, **build: object) -> ModelEntry:
    source = manifest.models["fer-mini-xception"]
    record = {"source_model": "fer-mini-xception", "onnx_sha256": source.sha256,
              "tensorrt_version": "10.3.0", "gpu_name": "Orin", "compute_capability": "8.7",
              "l4t_release": "R36.3.0", "precision": "fp16",
              "input_shapes": {"input": [[1, 1, 64, 64], [16, 1, 64, 64], [32, 1, 64, 64]]},
              "built_at": "2026-11-24T00:00:00+00:00",
              "build_command": build_engine_command("fer-mini-xception", "fp16", 640, 480, 32)}
    record.update(build)
    return source.model_copy(update={
        "name": "fer-mini-xception@tensorrt-fp16", "format": "tensorrt",
        "file": "fer-mini-xception.tensorrt-fp16.engine", "build": EngineBuild(**record)})


@pytest.fixture
def manifest(models_dir: Path) -> Manifest:
    return load_manifest(models_dir)


def test_a_matching_engine_is_accepted(manifest: Manifest) -> None:
    engine = engine_entry(manifest)
    assert incompatibilities(engine, ORIN, manifest) == []


@pytest.mark.parametrize(("runtime", "expected"), [
    (RuntimeInfo("10.4.0", "Orin", "8.7", "R36.3.0"),
     "built with TensorRT 10.3.0, this box has 10.4.0"),
    (RuntimeInfo("10.3.0", "Xavier", "7.2", "R36.3.0"),
     "built for Orin (compute 8.7), this box has Xavier (compute 7.2)"),
    (RuntimeInfo("10.3.0", "Orin", "8.7", "R36.4.0"),
     "built on JetPack/L4T R36.3.0, this box runs R36.4.0"),
    (RuntimeInfo(None, None, None, None), "TensorRT is not installed here"),
])
def test_each_mismatch_is_named(manifest: Manifest, runtime: RuntimeInfo,
                                expected: str) -> None:
    assert expected in incompatibilities(engine_entry(manifest), runtime, manifest)


def test_a_changed_onnx_model_invalidates_its_engine(manifest: Manifest) -> None:
    engine = engine_entry(manifest, onnx_sha256="0" * 64)
    assert incompatibilities(engine, ORIN, manifest) == [
        "its ONNX model fer-mini-xception has changed since the build"]


def test_mismatch_stops_with_the_rebuild_command_or_falls_back(
        models_dir: Path, manifest: Manifest, tmp_path: Path) -> None:
    manifest.models["fer-mini-xception@tensorrt-fp16"] = engine_entry(manifest)
    assert engine_for(manifest, "fer-mini-xception") is not None
    newer = RuntimeInfo("10.9.0", "Orin", "8.7", "R36.3.0")
    with pytest.raises(ModelError) as caught:
        open_model(models_dir, manifest, "fer-mini-xception", backend="tensorrt",
                   fallback=False, runtime=newer)
    text = str(caught.value)
    assert "fer-mini-xception@tensorrt-fp16" in text and "10.3.0" in text and "10.9.0" in text
    assert "edge models build-engine --model fer-mini-xception --precision fp16" in text
    engine = open_model(models_dir, manifest, "fer-mini-xception", backend="tensorrt",
                        fallback=True, runtime=newer)
    assert engine.backend == "onnxruntime"  # the ONNX model, logged as a fallback
    with pytest.raises(ModelError, match="no TensorRT engine has been built from"):
        open_model(models_dir, manifest, "retinaface-mnet025", backend="tensorrt",
                   fallback=False, runtime=ORIN)


def test_profiles_fixed_detector_and_dynamic_expression_batch(manifest: Manifest) -> None:
    detector = profile_shapes(manifest.models["retinaface-mnet025"], 640, 480, 32)
    assert detector == {"input": [[1, 3, 480, 640]] * 3}
    expression = profile_shapes(manifest.models["fer-mini-xception"], 640, 480, 32)
    assert expression == {"input": [[1, 1, 64, 64], [16, 1, 64, 64], [32, 1, 64, 64]]}


def test_calibration_batches(manifest: Manifest, tmp_path: Path,
                             vision_models: VisionModels) -> None:
    """Calibration prepares real images exactly as the running stages feed their engines."""
    folder = tmp_path / "crops"
    folder.mkdir()
    photo = samples.astronaut()
    for index in range(11):
        cv2.imwrite(str(folder / f"{index:02d}.png"), np.roll(photo, index * 7, axis=1))
    spec = manifest.models["fer-mini-xception"].input
    batches = CalibrationBatches(folder, spec, 4, 640, 480)
    produced = list(batches)
    assert len(batches) == 2 and [b.shape for b in produced] == [(4, 1, 64, 64)] * 2
    np.testing.assert_array_equal(produced[0][0], vision_models.classifier.preprocess([photo])[0])
    assert produced[0].min() >= -1.0 and produced[0].max() <= 1.0  # (x - 127.5) / 127.5
    detector = manifest.models["retinaface-mnet025"].input
    frames = next(iter(CalibrationBatches(folder, detector, 2, 640, 480)))
    assert frames.shape == (2, 3, 480, 640)
    np.testing.assert_array_equal(frames[0], vision_models.detector.preprocess([photo])[0][0])
    assert not np.array_equal(frames[1], frames[0])  # positive control: a different image
    # the letterbox pad is the mean colour: zero after normalisation
    assert np.abs(frames[0, :, :, 600:]).max() == 0
    with pytest.raises(EdgeError, match="fewer than one batch"):
        CalibrationBatches(folder, spec, 32, 640, 480)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgeError, match="holds no images"):
        CalibrationBatches(tmp_path / "empty", spec, 1, 640, 480)


def test_l4t_release_is_read(tmp_path: Path) -> None:
    release = tmp_path / "nv_tegra_release"
    release.write_text("# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic\n")
    assert l4t_release(release) == "R36.3.0"
    assert l4t_release(tmp_path / "absent") is None


@pytest.mark.skipif(tensorrt_installed(),
                    reason="TensorRT is installed: the error path does not apply")
def test_cli_without_tensorrt(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "build-engine", "--model", "retinaface-mnet025"]) == 2
    assert "needs TensorRT's Python bindings, which are not installed here" in (
        capsys.readouterr().err)
    assert main(["models", "build-engine", "--model", "x", "--input-size", "big"]) == 2
    assert "--input-size 'big': use WIDTHxHEIGHT" in capsys.readouterr().err
    assert main(["models", "doctor"]) == 0
    out = capsys.readouterr().out
    assert "tensorrt:    not installed" in out and "engines:     none built" in out


def test_doctor_reports_each_engine(cli_env: Path, models_dir: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    copy = linked_models(models_dir, tmp_path / "engines")
    manifest = load_manifest(copy)
    manifest.models["fer-mini-xception@tensorrt-fp16"] = engine_entry(manifest)
    save_manifest(copy, manifest)
    assert main(["models", "doctor", "--dir", str(copy)]) == 0
    out = capsys.readouterr().out
    assert "engine fer-mini-xception@tensorrt-fp16: " in out
    assert "rebuild: edge models build-engine --model fer-mini-xception" in out


def _no_gpu() -> bool:
    from edge.inference.tensorrt_compat import gpu_facts

    return not tensorrt_installed() or gpu_facts()[1] is None


@pytest.mark.gpu
@pytest.mark.skipif(_no_gpu(), reason="needs TensorRT and an NVIDIA GPU (none on this machine)")
def test_engines_match_onnxruntime_on_a_gpu(models_dir: Path, tmp_path: Path) -> None:
    """FP32, FP16 and INT8 (from the Q/DQ model) engines of the expression model against
    ONNX Runtime running the same ONNX files."""
    from edge.inference import open_engine
    from edge.models.build_engine import build_engine
    from edge.models.quantize import quantize

    copy = linked_models(models_dir, tmp_path / "engines")
    crops = tmp_path / "crops"
    crops.mkdir()
    for index, photo in enumerate([samples.astronaut(), samples.cameraman()] * 8):
        cv2.imwrite(str(crops / f"{index:02d}.png"), np.roll(photo, index * 5, axis=0))
    quantize(copy, "fer-mini-xception", crops)
    batch = np.random.default_rng(0).uniform(-1, 1, (5, 1, 64, 64)).astype(np.float32)
    for precision, onnx_name, tolerance in (("fp32", "fer-mini-xception", 1e-4),
                                            ("fp16", "fer-mini-xception", 1e-2),
                                            ("int8", "fer-mini-xception-int8", 1e-2)):
        built = build_engine(copy, "fer-mini-xception", precision=precision,  # type: ignore[arg-type]
                             max_batch=8)
        assert built.build is not None and built.build.source_model == onnx_name
        manifest = load_manifest(copy)
        trt_engine = open_engine(copy, built, backend="tensorrt")
        ort_engine = open_engine(copy, manifest.models[onnx_name])
        expected = ort_engine.run({"input": batch})["probabilities"]
        got = trt_engine.run({"input": batch})["probabilities"]
        np.testing.assert_allclose(got, expected, atol=tolerance, err_msg=precision)
        with pytest.raises(ModelError, match="dimension 0 is 9"):  # past the profile
            trt_engine.run({"input": np.zeros((9, 1, 64, 64), np.float32)})
        trt_engine.close()
        ort_engine.close()
