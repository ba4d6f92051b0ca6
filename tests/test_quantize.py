"""One quantization path: the Q/DQ INT8 and FP16 ONNX models on ONNX Runtime, recorded in
the manifest, and the TensorRT build plan for every supported TensorRT version."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edge.core.errors import EdgeError
from edge.core.manifest import load_manifest
from edge.demos import samples
from edge.models.build_engine import BuildPlan, build_plan, source_for
from edge.models.quantize import convert_fp16, quantize
from edge.settings import Settings
from edge.vision.loader import VisionModels
from tests.models_support import linked_models

JETPACKS = {"6.0": (8, 6), "6.1": (10, 3), "7.0": (10, 13), "7.2": (10, 16), "7.2.2": (11, 4)}


@pytest.fixture(scope="module")
def derived_models(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with fer-mini-xception-int8 (from 24 real face crops) and -fp16."""
    folder = tmp_path_factory.mktemp("quantized")
    copy = linked_models(models_dir, folder / "engines")
    crops = folder / "crops"
    crops.mkdir()
    for index, photo in enumerate([samples.astronaut(), samples.cameraman()] * 12):
        shifted = np.roll(photo, index * 5, axis=0)
        cv2.imwrite(str(crops / f"{index:02d}.png"), shifted)
    quantize(copy, "fer-mini-xception", crops)
    convert_fp16(copy, "fer-mini-xception")
    return copy


def test_the_int8_model_is_symmetric_qdq_and_recorded(derived_models: Path) -> None:
    manifest = load_manifest(derived_models)
    made = manifest.models["fer-mini-xception-int8"]
    assert made.precision == "int8" and made.derived is not None
    assert made.derived.source_model == "fer-mini-xception"
    assert made.derived.source_sha256 == manifest.models["fer-mini-xception"].sha256
    assert made.derived.calibration_images == 24
    assert "edge models quantize --model fer-mini-xception" in made.derived.command
    model = onnx.load(str(derived_models / made.file))
    quantizers = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert quantizers, "no Q/DQ nodes"
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    zero_points = [constants[n.input[2]] for n in quantizers if n.input[2] in constants]
    # what TensorRT's explicit quantization accepts: signed INT8, zero point 0
    assert zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)


def test_int8_and_fp16_run_on_onnxruntime_and_agree_with_fp32(derived_models: Path) -> None:
    crops = [samples.astronaut(), samples.cameraman(), samples.group_scene()]
    results = {}
    for name in ("fer-mini-xception", "fer-mini-xception-int8", "fer-mini-xception-fp16"):
        models = VisionModels.load(Settings(models={"dir": derived_models, "expression": name}))
        assert models.engines[1].backend == "onnxruntime"
        results[name] = models.classifier.probabilities(crops)
        models.close()
    fp32 = results["fer-mini-xception"]
    np.testing.assert_allclose(results["fer-mini-xception-fp16"], fp32, atol=0.01)
    int8 = results["fer-mini-xception-int8"]
    assert (int8.argmax(1) == fp32.argmax(1)).all()
    assert np.abs(int8 - fp32).max() < 0.25
    assert not np.array_equal(int8, fp32)  # control: it is not the FP32 model again


def test_only_an_fp32_onnx_model_is_quantized(derived_models: Path, tmp_path: Path) -> None:
    with pytest.raises(EdgeError, match="is not an FP32 ONNX model"):
        quantize(derived_models, "fer-mini-xception-int8", tmp_path)
    with pytest.raises(EdgeError, match="is not an FP32 ONNX model"):
        convert_fp16(derived_models, "dlib-resnet-v1")


def test_an_engine_is_built_from_the_copy_made_for_its_precision(derived_models: Path) -> None:
    manifest = load_manifest(derived_models)
    assert source_for(manifest, "fer-mini-xception", "int8") == "fer-mini-xception-int8"
    assert source_for(manifest, "fer-mini-xception", "fp16") == "fer-mini-xception-fp16"
    assert source_for(manifest, "fer-mini-xception", "fp32") == "fer-mini-xception"
    assert source_for(manifest, "retinaface-mnet025", "int8") == "retinaface-mnet025"


@pytest.mark.parametrize("jetpack", list(JETPACKS))
def test_build_plan_per_jetpack(jetpack: str) -> None:
    """Never a flag TensorRT 11 removed; explicit batch where 8.6 needs it; INT8 only from
    Q/DQ; TF32 off for fp32."""
    version = JETPACKS[jetpack]
    int8 = build_plan(version, "int8", "int8")
    fp32 = build_plan(version, "fp32", "fp32")
    assert fp32.cleared_flags == ("TF32",) and fp32.builder_flags == ()
    if version >= (11, 0):
        assert int8 == BuildPlan((), (), ())
        assert build_plan(version, "fp16", "fp16") == BuildPlan((), (), ())
        with pytest.raises(EdgeError, match="TensorRT 11 has no FP16 flag"):
            build_plan(version, "fp16", "fp32")
    elif version >= (10, 0):
        assert int8 == BuildPlan(("STRONGLY_TYPED",), (), ())
        assert build_plan(version, "fp16", "fp32").builder_flags == ("FP16",)
        assert build_plan(version, "fp16", "fp16").network_flags == ("STRONGLY_TYPED",)
    else:
        assert int8 == BuildPlan(("EXPLICIT_BATCH",), ("INT8", "FP16"), ())
        assert fp32.network_flags == ("EXPLICIT_BATCH",)
    removed_in_11 = {"FP16", "INT8"}
    if version >= (11, 0):
        for precision, onnx_precision in (("fp32", "fp32"), ("fp16", "fp16"), ("int8", "int8")):
            plan = build_plan(version, precision, onnx_precision)  # type: ignore[arg-type]
            assert not removed_in_11 & set(plan.builder_flags)
    with pytest.raises(EdgeError, match="quantized \\(Q/DQ\\) ONNX model"):
        build_plan(version, "int8", "fp32")


def test_the_quantized_detector_finds_the_faces(models_dir: Path, tmp_path: Path) -> None:
    """RetinaFace's ONNX is opset 11; per-channel Q/DQ needs 13: the model is raised first.
    Calibrated on a few crowd frames, it still finds the group photo's three faces."""
    copy = linked_models(models_dir, tmp_path / "engines")
    frames = tmp_path / "frames"
    frames.mkdir()
    for index, photo in enumerate([samples.group_scene(), samples.astronaut(),
                                   samples.cameraman()] * 2):
        cv2.imwrite(str(frames / f"{index}.png"), np.roll(photo, index * 9, axis=1))
    made = quantize(copy, "retinaface-mnet025", frames)
    assert made.derived is not None and made.derived.calibration_images == 6
    models = VisionModels.load(Settings(models={"dir": copy, "detector": made.name}))
    found = models.detector.detect([samples.group_scene()])[0]
    models.close()
    assert len(found) == 3


def test_bad_calibration_input_is_one_clear_line(cli_env: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from edge.cli import main

    assert main(["models", "quantize", "--model", "fer-mini-xception", "--calibration",
                 str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert "no such calibration folder" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert main(["models", "quantize", "--model", "fer-mini-xception", "--calibration",
                 str(tmp_path / "empty")]) == 2
    assert "holds no images" in capsys.readouterr().err


def test_doctor_lists_the_derived_models(derived_models: Path, cli_env: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from edge.cli import main

    assert main(["models", "doctor", "--dir", str(derived_models)]) == 0
    out = capsys.readouterr().out
    assert "onnx fer-mini-xception-int8: int8 from fer-mini-xception\n" in out
    assert "onnx fer-mini-xception-fp16: fp16 from fer-mini-xception\n" in out
