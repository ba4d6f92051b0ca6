"""The TensorRT back end's own checks, without a GPU: version gates, the GPU's facts on a
Jetson, feeds outside the engine's profile, TensorRT's failure returns, and the fallback
to ONNX Runtime when the TensorRT back end itself fails. TensorRT and CUDA cannot run on
this machine, so where a test needs them it uses a stand-in for the TensorRT execution
context and the CUDA stream; the real ones run in the GPU-marked test."""

from __future__ import annotations

import importlib
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.core.errors import ModelError
from edge.core.manifest import Manifest, load_manifest, sha256_file
from edge.inference import open_model
from edge.inference.base import TensorSpec
from edge.inference.cuda_runtime import check, device_facts
from edge.inference.tensorrt_backend import TensorRTEngine, check_input_shape
from edge.inference.tensorrt_compat import (
    RuntimeInfo,
    gpu_facts,
    incompatibilities,
    require_tensorrt,
    supported_tensorrt,
    tensorrt_installed,
)
from tests.models_support import linked_models
from tests.test_tensorrt import engine_entry


@pytest.mark.parametrize("version", ["8.6.2.3", "10.3.0.30", "10.13.0.35", "10.16.0.7",
                                     "11.4.0.106"])
def test_every_current_jetpacks_tensorrt_is_supported(version: str) -> None:
    assert supported_tensorrt(version) >= (8, 6)


def test_older_tensorrt_is_refused_with_the_jetpack_upgrade() -> None:
    with pytest.raises(ModelError, match=r"older than 8\.6") as caught:
        supported_tensorrt("8.5.2.2")  # JetPack 5.1
    assert "JetPack 6.1 or later" in str(caught.value)
    with pytest.raises(ModelError, match="newer than this appliance knows"):
        supported_tensorrt("12.0.0")


def test_an_unsupported_tensorrt_is_named_as_the_engines_problem(models_dir: Path) -> None:
    manifest = load_manifest(models_dir)
    engine = engine_entry(manifest, tensorrt_version="8.5.2.2")
    reasons = incompatibilities(engine, RuntimeInfo("8.5.2.2", "Xavier", "7.2", None), manifest)
    assert len(reasons) == 2 and "JetPack 6.1 or later" in reasons[0]


def test_gpu_facts_where_nvidia_smi_says_not_available(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """JetPack 6's nvidia-smi prints [N/A]: that is no GPU name, not a name '[N/A]'. (Here
    as on a box without CUDA's Python bindings: CUDA's own answer is taken away.)"""
    monkeypatch.setattr("edge.inference.tensorrt_compat.device_facts", lambda: None)
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho '[N/A], [N/A]'\n")
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert gpu_facts() == (None, None)
    smi.write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3, 9.0'\n")  # control: a desktop GPU
    assert gpu_facts() == ("NVIDIA H100 80GB HBM3", "9.0")


def test_a_cuda_failure_is_an_error_in_cudas_words() -> None:
    """Device 9999 exists nowhere: no driver here, an invalid device on a GPU machine."""
    runtime = importlib.import_module("cuda.bindings.runtime")
    with pytest.raises(ModelError, match=r"CUDA cudaSetDevice failed: \w+") as caught:
        check("cudaSetDevice", runtime.cudaSetDevice(9999))
    assert "driver" in str(caught.value) or "device" in str(caught.value)
    if device_facts() is None:  # this machine: CUDA finds no GPU, and says why
        with pytest.raises(ModelError, match="CUDA cudaGetDeviceCount failed: CUDA driver"):
            check("cudaGetDeviceCount", runtime.cudaGetDeviceCount())


@pytest.mark.skipif(tensorrt_installed(), reason="TensorRT is installed here")
def test_missing_tensorrt_is_said_plainly() -> None:
    with pytest.raises(ModelError, match="needs TensorRT's Python bindings") as caught:
        require_tensorrt()
    assert "python3-libnvinfer" in str(caught.value)


def test_a_detector_fed_another_size_than_its_engine_is_refused() -> None:
    built = (1, 3, 480, 640)
    check_input_shape("input", built, built, built)
    with pytest.raises(ModelError, match="dimension 2 is 720, the engine was built for 480"):
        check_input_shape("input", (1, 3, 720, 1280), built, built)
    with pytest.raises(ModelError, match="dimension 0 is 33, the engine was built for 1 to 32"):
        check_input_shape("input", (33, 1, 64, 64), (1, 1, 64, 64), (32, 1, 64, 64))
    with pytest.raises(ModelError, match="3 dimensions given"):
        check_input_shape("input", (1, 64, 64), (1, 1, 64, 64), (32, 1, 64, 64))


class StandInContext:
    """TensorRT's IExecutionContext as far as ``run`` uses it, with its failure returns."""

    def __init__(self, *, accepts_shape: bool = True, executes: bool = True) -> None:
        self.accepts_shape, self.executes = accepts_shape, executes
        self.shape: tuple[int, ...] = ()
        self.ran = 0

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        self.shape = shape
        return self.accepts_shape

    def execute_async_v3(self, stream: int) -> bool:
        self.ran += 1
        return self.executes

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return (self.shape[0], 7)


class StandInStream:
    handle = 0

    def to_device(self, device: int, host: np.ndarray) -> None: ...
    def to_host(self, host: np.ndarray, device: int) -> None: ...
    def synchronize(self) -> None: ...


def stand_in_engine(context: StandInContext) -> TensorRTEngine:
    engine = TensorRTEngine.__new__(TensorRTEngine)
    parts: dict[str, Any] = {
        "_context": context, "_stream": StandInStream(), "_engine": object(),
        "inputs": (TensorSpec("input", (None, 1, 64, 64), np.dtype(np.float32)),),
        "outputs": (TensorSpec("probabilities", (None, 7), np.dtype(np.float32)),),
        "_profile": {"input": ((1, 1, 64, 64), (32, 1, 64, 64))},
        "_host": {"input": np.zeros(32 * 64 * 64, np.float32),
                  "probabilities": np.full(32 * 7, 0.5, np.float32)},
        "_device": {"input": 1, "probabilities": 2}}
    engine.__dict__.update(parts)
    return engine


def test_tensorrt_failures_are_errors_not_last_calls_output() -> None:
    batch = np.zeros((4, 1, 64, 64), np.float32)
    working = StandInContext()
    assert stand_in_engine(working).run({"input": batch})["probabilities"].shape == (4, 7)
    with pytest.raises(ModelError, match="refused the shape"):
        stand_in_engine(StandInContext(accepts_shape=False)).run({"input": batch})
    failing = StandInContext(executes=False)
    with pytest.raises(ModelError, match="could not run the engine"):
        stand_in_engine(failing).run({"input": batch})
    assert failing.ran == 1
    refused = StandInContext()
    with pytest.raises(ModelError, match="dimension 0 is 33"):
        stand_in_engine(refused).run({"input": np.zeros((33, 1, 64, 64), np.float32)})
    assert refused.ran == 0  # refused before TensorRT was asked


def test_a_failure_inside_the_tensorrt_back_end_falls_back(models_dir: Path,
                                                          tmp_path: Path) -> None:
    """The engine passes every manifest check, then the back end fails while opening it
    (here TensorRT itself is absent): with the fallback the ONNX model runs; without it the
    failure is one clear error."""
    copy = linked_models(models_dir, tmp_path / "engines")
    manifest: Manifest = load_manifest(copy)
    record = engine_entry(manifest)
    (copy / record.file).write_bytes(b"not an engine")
    manifest.models[record.name] = record.model_copy(update={
        "sha256": sha256_file(copy / record.file), "size_bytes": 13})
    matching = RuntimeInfo("10.3.0", "Orin", "8.7", "R36.3.0")
    engine = open_model(copy, manifest, "fer-mini-xception", backend="tensorrt",
                        fallback=True, runtime=matching)
    assert engine.backend == "onnxruntime"
    with pytest.raises(ModelError, match="TensorRT"):
        open_model(copy, manifest, "fer-mini-xception", backend="tensorrt", fallback=False,
                   runtime=matching)


DRIFT_PROBE = '''import tensorrt as trt

builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
network = builder.create_network(0)
config = builder.create_builder_config()
fine = builder.build_serialized_network(network, config)
removed = builder.build_engine(network, config)
'''


def test_the_type_check_reads_the_tensorrt_stubs(tmp_path: Path) -> None:
    """`make test` type-checks the TensorRT code against the published stubs: a call that
    TensorRT 10 removed is an error there; the call the builder makes is not (control)."""
    repo = Path(__file__).resolve().parents[1]
    probe = tmp_path / "drift_probe.py"
    probe.write_text(DRIFT_PROBE)
    done = subprocess.run([str(repo / ".venv" / "bin" / "basedpyright"), "--pythonpath",
                           sys.executable, "-p", str(repo / "pyproject.toml"), str(probe)],
                          cwd=repo, capture_output=True, text=True, timeout=300, check=False)
    errors = [line for line in done.stdout.splitlines() if " - error: " in line]
    assert len(errors) == 1, done.stdout
    assert 'drift_probe.py:7' in errors[0] and '"build_engine"' in errors[0]
