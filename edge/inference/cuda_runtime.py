"""The few CUDA runtime calls the TensorRT back end needs, through NVIDIA's ``cuda-python``.

Why cuda-python and not pycuda: pycuda is not part of JetPack and ``pip install pycuda``
compiles against the CUDA toolkit; NVIDIA's own TensorRT samples moved to cuda-python,
whose ``cuda-bindings`` wheels install on x86-64 and aarch64 (the Jetson) without a
compiler. The runtime API also makes the device's primary context current by itself, so
no allocation can happen without a context (pycuda needed an explicit push; without it
the INT8 calibrator's allocation failed inside TensorRT, which read that as "no batches").

Every call's status is checked: a failure raises ``ModelError`` naming the call and CUDA's
own words. The device's name and compute capability come from CUDA itself, which works on
a Jetson, where ``nvidia-smi`` is absent (JetPack 5) or reports N/A (JetPack 6).
"""

from __future__ import annotations

import ctypes
import functools
import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.core.errors import ModelError

INSTALL_HINT = ("install NVIDIA's CUDA Python bindings for the box's CUDA major version "
                "(tools/bootstrap.sh --device does on a Jetson), or set models.backend = "
                "'onnxruntime'")


@functools.cache  # looked up once: ``check`` runs on every copy of every inference
def _runtime() -> Any:
    """``cuda.bindings.runtime`` (compiled, and shipped without type stubs: typed Any)."""
    try:
        runtime = importlib.import_module("cuda.bindings.runtime")
    except ImportError:
        raise ModelError("the tensorrt back end needs NVIDIA's CUDA Python bindings "
                         "(cuda-bindings), which are not installed here", INSTALL_HINT) from None
    return runtime


def check(call: str, result: Any) -> Any:
    """The value(s) of a cuda-python call ``(status, *values)``; raise if status failed."""
    runtime = _runtime()
    status, *values = result if isinstance(result, tuple) else (result,)
    if status != runtime.cudaError_t.cudaSuccess:
        _, text = runtime.cudaGetErrorString(status)
        words = text.decode() if isinstance(text, bytes) else str(text)
        raise ModelError(f"CUDA {call} failed: {words}",
                         "check that the GPU is visible to this process (the unit's "
                         "DeviceAllow, the video group) and the driver is loaded")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


@dataclass(frozen=True)
class DeviceFacts:
    name: str
    compute_capability: str   # "8.7"


def device_facts(device: int = 0) -> DeviceFacts | None:
    """The GPU's name and compute capability from CUDA; None where CUDA finds no GPU
    (no bindings, no driver, no device)."""
    try:
        runtime = _runtime()
        count = check("cudaGetDeviceCount", runtime.cudaGetDeviceCount())
        if not count or device >= count:
            return None
        properties = check("cudaGetDeviceProperties", runtime.cudaGetDeviceProperties(device))
    except ModelError:
        return None
    name = properties.name
    name = name.split(b"\0", 1)[0].decode() if isinstance(name, bytes) else str(name)
    return DeviceFacts(name, f"{properties.major}.{properties.minor}")


class Stream:
    """A CUDA stream, with pinned host and device buffers freed in ``close``."""

    def __init__(self) -> None:
        self._runtime = _runtime()
        check("cudaSetDevice", self._runtime.cudaSetDevice(0))
        self._stream: Any = check("cudaStreamCreate", self._runtime.cudaStreamCreate())
        self._device: list[int] = []
        self._host: list[int] = []

    @property
    def handle(self) -> int:
        return int(self._stream)

    def device_buffer(self, nbytes: int) -> int:
        pointer = int(check("cudaMalloc", self._runtime.cudaMalloc(max(nbytes, 1))))
        self._device.append(pointer)
        return pointer

    def host_buffer(self, count: int, dtype: np.dtype[Any]) -> np.ndarray:
        """A page-locked host array (copies to and from it can be asynchronous)."""
        nbytes = max(count * dtype.itemsize, 1)
        pointer = int(check("cudaMallocHost", self._runtime.cudaMallocHost(nbytes)))
        self._host.append(pointer)
        raw = np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_ubyte)),
                                    shape=(nbytes,))
        return raw.view(dtype)[:count]

    def to_device(self, device: int, host: np.ndarray) -> None:
        check("cudaMemcpyAsync", self._runtime.cudaMemcpyAsync(
            device, host.ctypes.data, host.nbytes,
            self._runtime.cudaMemcpyKind.cudaMemcpyHostToDevice, self._stream))

    def to_host(self, host: np.ndarray, device: int) -> None:
        check("cudaMemcpyAsync", self._runtime.cudaMemcpyAsync(
            host.ctypes.data, device, host.nbytes,
            self._runtime.cudaMemcpyKind.cudaMemcpyDeviceToHost, self._stream))

    def synchronize(self) -> None:
        check("cudaStreamSynchronize", self._runtime.cudaStreamSynchronize(self._stream))

    def close(self) -> None:
        """Stream first, then the memory it used (the context stays: it is the device's
        primary context, shared with anything else in the process)."""
        if self._stream is None:
            return
        self._runtime.cudaStreamSynchronize(self._stream)
        self._runtime.cudaStreamDestroy(self._stream)
        self._stream = None
        for pointer in self._device:
            self._runtime.cudaFree(pointer)
        for pointer in self._host:
            self._runtime.cudaFreeHost(pointer)
        self._device.clear()
        self._host.clear()
