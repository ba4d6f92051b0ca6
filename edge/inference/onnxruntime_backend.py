"""ONNX Runtime back end: CPU by default, CUDA when onnxruntime-gpu and a GPU are present."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi.onnxruntime_pybind11_state import (
    Fail,
    InvalidGraph,
    InvalidProtobuf,
    NoSuchFile,
)

from edge.core.errors import ModelError
from edge.inference.base import Engine, TensorSpec

_ORT_TYPES = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(int32)": np.dtype(np.int32),
}


def _spec(arg: ort.NodeArg) -> TensorSpec:
    dtype = _ORT_TYPES.get(arg.type)
    if dtype is None:
        raise ModelError(f"tensor {arg.name!r} has unsupported type {arg.type}")
    return TensorSpec(arg.name, tuple(arg.shape), dtype)


def providers_for(device: str) -> list[str]:
    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    has_cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not has_cuda:
        raise ModelError("models.device = 'cuda' but this onnxruntime has no CUDA provider "
                         f"(available: {', '.join(available)})",
                         "install onnxruntime-gpu, or set models.device = 'cpu' or 'auto'")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"] if has_cuda else [
        "CPUExecutionProvider"]


class OnnxRuntimeEngine(Engine):
    backend = "onnxruntime"

    def __init__(self, path: Path, device: str = "auto", threads: int = 0) -> None:
        self._session: ort.InferenceSession | None = None
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3  # warnings about unused initializers are noise here
        # ONNX Runtime's worker threads spin while waiting for work. On a small box that
        # burns the cores the camera decoder and the descriptor worker need: measured on 2
        # cores, turning it off took the detector from 18.8 to 11.8 ms a frame and the
        # loop from 44 to 63 frames/s (tools/bench.py, one face).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(path), options,
                                                 providers=providers_for(device))
        except (Fail, InvalidGraph, NoSuchFile, InvalidProtobuf) as exc:
            raise ModelError(f"{path}: ONNX Runtime cannot load it ({str(exc)[:200]})",
                             "run `edge models prepare --force`") from None
        used = self._session.get_providers()[0]
        self.device = "cuda" if used == "CUDAExecutionProvider" else "cpu"
        self.inputs = tuple(_spec(a) for a in self._session.get_inputs())
        self.outputs = tuple(_spec(a) for a in self._session.get_outputs())
        self._output_names = [o.name for o in self.outputs]

    def run(self, feeds: Mapping[str, np.ndarray],
            outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        self.check_feeds(feeds)
        names = list(outputs) if outputs is not None else self._output_names
        if self._session is None:
            raise ModelError("this ONNX Runtime engine was closed", "open the model again")
        results = self._session.run(names, dict(feeds))
        return {name: np.asarray(result) for name, result in zip(names, results)}

    def close(self) -> None:
        self._session = None
