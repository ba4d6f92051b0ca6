"""TensorRT back end: the name-based tensor API (TensorRT 8.6 to 11) with cuda-python buffers.

One CUDA stream per engine (``edge.inference.cuda_runtime``), pinned host buffers and device
buffers sized once for the optimisation profile's largest shapes and reused on every call,
``execute_async_v3``. Every call that can fail is checked: a shape outside the engine's
profile (in any dimension, not only the batch), ``set_input_shape`` or ``execute_async_v3``
returning False. Unchecked, TensorRT leaves the output buffers as the last call wrote them,
and the caller would read the previous frame's detections as this frame's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.core.errors import ModelError
from edge.inference.base import Engine, TensorSpec
from edge.inference.cuda_runtime import Stream
from edge.inference.tensorrt_compat import require_tensorrt

if TYPE_CHECKING:  # the published TensorRT stubs type every call below
    import tensorrt


def check_input_shape(name: str, shape: tuple[int, ...], low: tuple[int, ...],
                      high: tuple[int, ...]) -> None:
    """Refuse a feed the engine's optimisation profile does not cover, naming the
    dimension (a detector fed another frame size than it was built for, a batch too big)."""
    if len(shape) != len(low):
        raise ModelError(f"input {name}: {len(shape)} dimensions given, the engine takes "
                         f"{len(low)} {tuple(low)}")
    for axis, (size, least, most) in enumerate(zip(shape, low, high)):
        if not least <= size <= most:
            span = str(least) if least == most else f"{least} to {most}"
            raise ModelError(
                f"input {name}: dimension {axis} is {size}, the engine was built for {span} "
                f"(shape {shape})", "rebuild the engine for this size (edge models "
                "build-engine --input-size / --max-batch) or feed what it was built for")


class TensorRTEngine(Engine):
    backend = "tensorrt"
    device = "cuda"

    def __init__(self, path: Path) -> None:
        require_tensorrt()
        import tensorrt as trt

        self._stream: Stream | None = None
        self._engine: tensorrt.ICudaEngine | None = None
        self._host: dict[str, np.ndarray] = {}
        self._device: dict[str, int] = {}
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is None:
            raise ModelError(f"{path}: TensorRT cannot load this engine (built for another "
                             "TensorRT version or GPU?)", "run `edge models doctor`")
        self._engine = engine
        context = engine.create_execution_context()
        if context is None:
            raise ModelError(f"{path}: TensorRT could not create an execution context "
                             "(out of GPU memory?)")
        self._context: tensorrt.IExecutionContext = context
        try:
            self._stream = Stream()
            inputs, outputs = [], []
            self._profile: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
            self._max_shapes: dict[str, tuple[int, ...]] = {}
            for index in range(engine.num_io_tensors):
                name = engine.get_tensor_name(index)
                shape = _dims(engine.get_tensor_shape(name))
                dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
                spec = TensorSpec(name, tuple(None if d < 0 else d for d in shape), dtype)
                if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                    inputs.append(spec)
                    low, _opt, high = (_dims(d) for d in
                                       engine.get_tensor_profile_shape(name, 0))
                    self._profile[name] = (low, high)
                    self._max_shapes[name] = high
                    self._set_shape(name, high)
                else:
                    outputs.append(spec)
            for spec in outputs:  # the largest output shapes follow from the largest inputs
                self._max_shapes[spec.name] = _dims(self._context.get_tensor_shape(spec.name))
            self.inputs, self.outputs = tuple(inputs), tuple(outputs)
            for spec in (*inputs, *outputs):
                count = int(np.prod(self._max_shapes[spec.name]))
                self._host[spec.name] = self._stream.host_buffer(count, spec.dtype)
                self._device[spec.name] = self._stream.device_buffer(
                    count * spec.dtype.itemsize)
                if not self._context.set_tensor_address(spec.name, self._device[spec.name]):
                    raise ModelError(f"{path}: TensorRT refused the address of {spec.name}")
        except BaseException:
            self.close()  # no stream or GPU memory left behind by a half-made engine
            raise

    @property
    def max_batch(self) -> int | None:
        return self._max_shapes[self.inputs[0].name][0]

    def _set_shape(self, name: str, shape: tuple[int, ...]) -> None:
        if not self._context.set_input_shape(name, shape):
            raise ModelError(f"input {name}: TensorRT refused the shape {shape}")

    def run(self, feeds: Mapping[str, np.ndarray],
            outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        self.check_feeds(feeds)
        stream = self._stream
        if stream is None:
            raise ModelError("this TensorRT engine is closed")
        for spec in self.inputs:
            array = np.ascontiguousarray(feeds[spec.name], dtype=spec.dtype)
            check_input_shape(spec.name, array.shape, *self._profile[spec.name])
            self._set_shape(spec.name, array.shape)
            host = self._host[spec.name][: array.size]
            host[:] = array.ravel()
            stream.to_device(self._device[spec.name], host)
        if not self._context.execute_async_v3(stream.handle):
            raise ModelError("TensorRT could not run the engine (see its log above); no "
                             "output was produced for this call")
        names = list(outputs) if outputs is not None else [o.name for o in self.outputs]
        shapes = {n: _dims(self._context.get_tensor_shape(n)) for n in names}
        for name in names:
            stream.to_host(self._host[name][: int(np.prod(shapes[name]))], self._device[name])
        stream.synchronize()
        return {n: self._host[n][: int(np.prod(shapes[n]))].reshape(shapes[n]).copy()
                for n in names}

    def close(self) -> None:
        """The execution context and engine first, then the stream and its buffers."""
        if self._engine is None:
            return
        del self._context
        self._engine = None
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        self._host.clear()
        self._device.clear()


def _dims(dims: Any) -> tuple[int, ...]:
    """A TensorRT ``Dims`` as a tuple (it indexes like a sequence; the stubs type no iterator)."""
    return tuple(int(dims[i]) for i in range(len(dims)))
