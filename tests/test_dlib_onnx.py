"""dlib's descriptor network as ONNX: dlib's own descriptors, on real faces, or a refusal."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import dlib
import numpy as np
import pytest

from edge.core.errors import ModelError
from edge.core.manifest import MANIFEST_NAME, load_manifest
from edge.demos import samples
from edge.inference import open_engine
from edge.models.dlib_onnx import check_against_dlib, read_dlib_resnet, resnet_to_onnx
from edge.settings import Settings
from edge.vision.identity import FaceEncoder
from edge.vision.loader import VisionModels
from tests.models_support import linked_models

DAT = "dlib_face_recognition_resnet_model_v1.dat"


def test_the_converted_network_gives_dlibs_descriptors_on_real_faces(
        models_dir: Path, vision_models: VisionModels) -> None:
    photos = [samples.astronaut(), samples.cameraman(),
              *(samples.face_tile(face, 150) for face in samples.lfw_faces(6))]
    chips = [face.chip for photo in photos for face, _ in vision_models.describe(photo)]
    assert len(chips) >= 6
    dlib_net = dlib.face_recognition_model_v1(str(models_dir / DAT))
    reference = np.array([np.asarray(dlib_net.compute_face_descriptor(
        np.ascontiguousarray(chip[:, :, ::-1]))) for chip in chips], np.float32)  # dlib: RGB
    converted = vision_models.encoder.encode(chips)
    assert vision_models.descriptor_model.format == "onnx"
    np.testing.assert_allclose(converted, reference, atol=1e-5)
    # positive control: a chip in the wrong colour order is a different descriptor
    swapped = vision_models.encoder.encode([chips[0][:, :, ::-1]])[0]
    assert np.abs(swapped - reference[0]).max() > 1e-2


def test_a_converted_network_that_differs_from_dlib_is_refused(models_dir: Path,
                                                               tmp_path: Path) -> None:
    net = read_dlib_resnet(models_dir / DAT)
    assert [layer.kind for layer in net.layers].count("con") == 29
    models = linked_models(models_dir, tmp_path / "models")
    entry = load_manifest(models).models["dlib-resnet-v1-onnx"]
    engine = open_engine(models, entry, device="cpu", threads=1)
    try:  # positive control: the prepared conversion passes
        assert check_against_dlib(models_dir / DAT, FaceEncoder(engine, entry)) < 1e-5
    finally:
        engine.close()
    # one convolution's bias off by 0.01: what a wrong reading of dlib's layout would do
    first = net.layers[0]
    altered = dataclasses.replace(first, params=first.params + np.float32(0.01))
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(resnet_to_onnx(dataclasses.replace(
        net, layers=(altered, *net.layers[1:]))).SerializeToString())
    from edge.inference.onnxruntime_backend import OnnxRuntimeEngine

    engine = OnnxRuntimeEngine(broken, device="cpu", threads=1)
    try:
        with pytest.raises(ModelError, match="differ from dlib's"):
            check_against_dlib(models_dir / DAT, FaceEncoder(engine, entry))
    finally:
        engine.close()


@pytest.mark.parametrize("damage", ["landmark model", "truncated"])
def test_a_file_that_is_not_dlibs_resnet_is_one_clear_error(models_dir: Path, tmp_path: Path,
                                                            damage: str) -> None:
    path = tmp_path / DAT
    if damage == "landmark model":
        path.write_bytes((models_dir / "shape_predictor_5_face_landmarks.dat").read_bytes())
    else:
        path.write_bytes((models_dir / DAT).read_bytes()[:1_000_000])
    with pytest.raises(ModelError) as raised:
        read_dlib_resnet(path)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)
    assert "edge models prepare --force" in (raised.value.hint or "")


def test_a_setting_naming_dlibs_own_file_runs_its_conversion(models_dir: Path,
                                                             tmp_path: Path) -> None:
    """Settings written before the conversion existed name ``dlib-resnet-v1``: they get the
    converted network; without it in the manifest, one error that says to prepare."""
    models = linked_models(models_dir, tmp_path / "models")
    settings = Settings.model_validate({"models": {"dir": models,
                                                   "descriptor": "dlib-resnet-v1"}})
    loaded = VisionModels.load(settings)
    try:
        assert loaded.descriptor_model.name == "dlib-resnet-v1-onnx"
    finally:
        loaded.close()
    manifest = json.loads((models / MANIFEST_NAME).read_text())
    del manifest["models"]["dlib-resnet-v1-onnx"]
    (models / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="dlib-resnet-v1: dlib's own file") as raised:
        VisionModels.load(settings)
    assert "edge models prepare" in (raised.value.hint or "")
