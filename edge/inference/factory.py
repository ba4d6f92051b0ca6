"""Pick and open the back end named in the settings for one manifest entry."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from edge.errors import ModelError
from edge.inference.base import Engine
from edge.models.manifest import ModelEntry, model_path


def available_backends() -> dict[str, bool]:
    """Which back ends can be imported on this machine."""
    return {
        "onnxruntime": importlib.util.find_spec("onnxruntime") is not None,
        "tensorrt": importlib.util.find_spec("tensorrt") is not None,
    }


def open_engine(models_dir: Path, model: ModelEntry, *, backend: str = "onnxruntime",
                device: str = "auto", threads: int = 0) -> Engine:
    path = model_path(models_dir, model)
    if not path.is_file():
        raise ModelError(f"{path}: model file missing", "run `edge models prepare`")
    if backend == "onnxruntime":
        if model.format != "onnx":
            raise ModelError(f"{model.name}: is a {model.format} file; the onnxruntime back end "
                             "needs ONNX", "point the settings at the ONNX entry")
        from edge.inference.onnxruntime_backend import OnnxRuntimeEngine

        return OnnxRuntimeEngine(path, device=device, threads=threads)
    if backend == "tensorrt":
        raise ModelError("models.backend = 'tensorrt' is not available in this release",
                         "set models.backend = 'onnxruntime'")
    raise ModelError(f"unknown back end {backend!r}", "use 'onnxruntime' or 'tensorrt'")
