"""Pick and open the back end named in the settings for one manifest entry."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from edge.core.errors import ModelError
from edge.core.logs import get_logger
from edge.core.manifest import Manifest, ModelEntry, entry, verified_model_path
from edge.inference.base import Engine
from edge.inference.tensorrt_compat import (
    RuntimeInfo,
    engine_for,
    incompatibilities,
    runtime_info,
    tensorrt_installed,
)


def available_backends() -> dict[str, bool]:
    """Which back ends can be imported on this machine."""
    return {
        "onnxruntime": importlib.util.find_spec("onnxruntime") is not None,
        "tensorrt": tensorrt_installed(),
    }


def open_engine(models_dir: Path, model: ModelEntry, *, backend: str = "onnxruntime",
                device: str = "auto", threads: int = 0) -> Engine:
    path = verified_model_path(models_dir, model)
    if backend == "onnxruntime":
        if model.format != "onnx":
            raise ModelError(f"{model.name}: is a {model.format} file; the onnxruntime back end "
                             "needs ONNX", "point the settings at the ONNX entry")
        from edge.inference.onnxruntime_backend import OnnxRuntimeEngine

        return OnnxRuntimeEngine(path, device=device, threads=threads)
    if backend == "tensorrt":
        if model.format != "tensorrt":
            raise ModelError(f"{model.name}: is not a TensorRT engine",
                             "build one with `edge models build-engine`")
        from edge.inference.tensorrt_backend import TensorRTEngine

        return TensorRTEngine(path)
    raise ModelError(f"unknown back end {backend!r}", "use 'onnxruntime' or 'tensorrt'")


def open_model(models_dir: Path, manifest: Manifest, name: str, *, backend: str,
               device: str = "auto", threads: int = 0, fallback: bool = True,
               runtime: RuntimeInfo | None = None) -> Engine:
    """Open manifest model ``name`` on the chosen back end.

    For TensorRT the engine built from ``name`` is checked against this box first. A
    mismatch stops with a message that names the engine, what differs and the command that
    rebuilds it; with ``fallback`` the ONNX model runs on ONNX Runtime instead (logged).
    The same holds for a failure inside the TensorRT back end while the engine opens (an
    engine TensorRT will not load, no CUDA device, a missing library).
    """
    model = entry(manifest, name, models_dir)
    if backend != "tensorrt":
        return open_engine(models_dir, model, backend=backend, device=device, threads=threads)
    engine = engine_for(manifest, name)
    if engine is None:
        reasons = [f"no TensorRT engine has been built from {name}"]
        hint = ("build it: edge models build-engine --model " + name)
    else:
        reasons = incompatibilities(engine, runtime or runtime_info(), manifest)
        hint = ("rebuild it on this box: " + engine.build.build_command if engine.build
                else "rebuild it on this box: edge models build-engine --model " + name)
    if not reasons and engine is not None:
        try:
            return open_engine(models_dir, engine, backend="tensorrt")
        except Exception as exc:
            if not fallback:
                if isinstance(exc, ModelError):
                    raise
                raise ModelError(f"TensorRT engine {engine.name} failed to open: "
                                 f"{type(exc).__name__}: {exc}", hint) from exc
            reasons = [f"it failed to open: {exc}"]
    label = engine.name if engine is not None else name
    if fallback:
        get_logger(__name__).warning("tensorrt_engine_unusable", engine=label,
                                     reasons="; ".join(reasons), hint=hint,
                                     action="running the ONNX model on ONNX Runtime")
        return open_engine(models_dir, model, backend="onnxruntime", device=device,
                           threads=threads)
    raise ModelError(f"TensorRT engine {label}: " + "; ".join(reasons), hint)
