"""TensorRT back end: the TensorRT 10 name-based tensor API with pycuda buffers.

One CUDA stream per engine, pinned host buffers and device buffers sized once for the
optimisation profile's largest shapes and reused on every call, ``execute_async_v3``.
The binding-index API of TensorRT 7/8 is gone and is not used. Needs a GPU, TensorRT
and pycuda (on a Jetson they come with JetPack; install.sh's venv can see them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge.core.errors import ModelError
from edge.inference.base import Engine, TensorSpec


class TensorRTEngine(Engine):
    backend = "tensorrt"
    device = "cuda"

    def __init__(self, path: Path) -> None:
        try:
            import pycuda.driver as cuda  # pyright: ignore[reportMissingImports]  (no stubs)
            import tensorrt as trt
        except ImportError as exc:
            raise ModelError(f"the tensorrt back end needs TensorRT and pycuda ({exc.name} is "
                             "missing)", "install JetPack's python3-libnvinfer and pycuda, or "
                             "set models.backend = 'onnxruntime'") from None
        self._trt, self._cuda = trt, cuda
        cuda.init()
        self._cuda_context = cuda.Device(0).retain_primary_context()
        self._cuda_context.push()
        try:
            runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            self._engine = runtime.deserialize_cuda_engine(path.read_bytes())
            if self._engine is None:
                raise ModelError(f"{path}: TensorRT cannot load this engine (built for another "
                                 "TensorRT version or GPU?)", "run `edge models doctor`")
            self._context = self._engine.create_execution_context()
            self._stream = cuda.Stream()
            inputs, outputs = [], []
            self._max_shapes: dict[str, tuple[int, ...]] = {}
            for index in range(self._engine.num_io_tensors):
                name = self._engine.get_tensor_name(index)
                shape = _dims(self._engine.get_tensor_shape(name))
                dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))
                spec = TensorSpec(name, tuple(None if d < 0 else d for d in shape), dtype)
                if self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                    inputs.append(spec)
                    self._max_shapes[name] = _dims(self._engine.get_tensor_profile_shape(
                        name, 0)[2])
                    self._context.set_input_shape(name, self._max_shapes[name])
                else:
                    outputs.append(spec)
            for spec in outputs:  # the largest output shapes follow from the largest inputs
                self._max_shapes[spec.name] = _dims(self._context.get_tensor_shape(spec.name))
            self.inputs, self.outputs = tuple(inputs), tuple(outputs)
            self._host: dict[str, Any] = {}
            self._device: dict[str, Any] = {}
            for spec in (*inputs, *outputs):
                size = int(np.prod(self._max_shapes[spec.name]))
                self._host[spec.name] = cuda.pagelocked_empty(size, spec.dtype)
                self._device[spec.name] = cuda.mem_alloc(size * spec.dtype.itemsize)
                self._context.set_tensor_address(spec.name, int(self._device[spec.name]))
        finally:
            self._cuda_context.pop()

    @property
    def max_batch(self) -> int | None:
        return self._max_shapes[self.inputs[0].name][0]

    def run(self, feeds: Mapping[str, np.ndarray],
            outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        self.check_feeds(feeds)
        cuda = self._cuda
        self._cuda_context.push()
        try:
            for spec in self.inputs:
                array = np.ascontiguousarray(feeds[spec.name])
                if array.shape[0] > self._max_shapes[spec.name][0]:
                    raise ModelError(f"batch {array.shape[0]} exceeds the engine's profile "
                                     f"maximum {self._max_shapes[spec.name][0]}")
                self._context.set_input_shape(spec.name, array.shape)
                host = self._host[spec.name][: array.size]
                host[:] = array.ravel()
                cuda.memcpy_htod_async(self._device[spec.name], host, self._stream)
            self._context.execute_async_v3(self._stream.handle)
            names = list(outputs) if outputs is not None else [o.name for o in self.outputs]
            shapes = {n: _dims(self._context.get_tensor_shape(n)) for n in names}
            for name in names:
                host = self._host[name][: int(np.prod(shapes[name]))]
                cuda.memcpy_dtoh_async(host, self._device[name], self._stream)
            self._stream.synchronize()
            return {n: self._host[n][: int(np.prod(shapes[n]))].reshape(shapes[n]).copy()
                    for n in names}
        finally:
            self._cuda_context.pop()

    def close(self) -> None:
        if getattr(self, "_engine", None) is None:
            return
        self._cuda_context.push()
        try:
            for buffer in self._device.values():
                buffer.free()
            self._device.clear()
            self._host.clear()
            del self._context
            self._engine = None
        finally:
            self._cuda_context.pop()
            self._cuda_context.detach()


def _dims(dims: Any) -> tuple[int, ...]:
    """A TensorRT ``Dims`` as a tuple (it indexes like a sequence; the stubs type no iterator)."""
    return tuple(int(dims[i]) for i in range(len(dims)))
