"""ONNX -> TensorRT engine with the TensorRT 10 Python API, recorded in the manifest.

FP32, FP16 or INT8 (entropy calibration over a folder of face crops or frames; the
calibration cache is written and reused). The detector gets a fixed input size (the
settings' ``detection.input_width/height``), batch 1; the expression model a dynamic
batch from 1 to ``max_batch``. A workspace limit and a timing cache speed up rebuilds.
The manifest entry records the ONNX sha256, TensorRT version, GPU and compute
capability, L4T release, precision, profile shapes, build date and the exact command.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from edge.core.errors import EdgeError
from edge.core.manifest import (
    EngineBuild,
    ModelEntry,
    entry,
    load_manifest,
    model_path,
    save_manifest,
    sha256_file,
)
from edge.inference.tensorrt_compat import runtime_info
from edge.models.calibration import CalibrationBatches


def profile_shapes(model: ModelEntry, width: int, height: int,
                   max_batch: int) -> dict[str, list[list[int]]]:
    """[min, opt, max] per input: fixed size for the detector, dynamic batch otherwise."""
    spec = model.input
    if spec is None:
        raise EdgeError(f"{model.name}: the manifest gives no input description")
    channels = 1 if spec.colour == "GRAY" else 3
    if model.kind == "detector":
        shape = [1, channels, height, width]
        return {spec.name: [shape, shape, shape]}
    size = [channels, spec.height or height, spec.width or width]
    return {spec.name: [[1, *size], [max(1, max_batch // 2), *size], [max_batch, *size]]}


def engine_name(model: str, precision: str) -> str:
    return f"{model}@tensorrt-{precision}"


def build_engine(models_dir: Path, model_name: str, *, precision: str = "fp16",
                 width: int = 640, height: int = 480, max_batch: int = 32,
                 workspace_mb: int = 1024, calibration: Path | None = None,
                 calibration_batch: int = 8, command: str | None = None,
                 progress: Callable[[str], None] | None = None) -> ModelEntry:
    say = progress or (lambda m: print(f"[engine] {m}", file=sys.stderr, flush=True))
    try:
        import tensorrt as trt
    except ImportError:
        raise EdgeError("building an engine needs TensorRT, which is not installed here",
                        "run this on the Jetson (JetPack ships TensorRT), or pip install "
                        "tensorrt on a machine with an NVIDIA GPU") from None
    if precision == "int8" and calibration is None:
        raise EdgeError("--precision int8 needs --calibration FOLDER (face crops or frames)")
    manifest = load_manifest(models_dir)
    model = entry(manifest, model_name, models_dir)
    if model.format != "onnx":
        raise EdgeError(f"{model_name}: is a {model.format} file; build from an ONNX entry")
    runtime = runtime_info()
    if runtime.compute_capability is None:
        raise EdgeError("no NVIDIA GPU found (nvidia-smi)", "build on the box that runs it")
    onnx_path = model_path(models_dir, model)
    shapes = profile_shapes(model, width, height, max_batch)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only kind
    parser = trt.OnnxParser(network, logger)
    say(f"parsing {onnx_path.name}")
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EdgeError(f"{onnx_path}: TensorRT cannot parse it ({errors})")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    profile = builder.create_optimization_profile()
    for name, (low, opt, high) in shapes.items():
        profile.set_shape(name, trt.Dims(low), trt.Dims(opt), trt.Dims(high))
    config.add_optimization_profile(profile)
    cache_dir = models_dir / ".cache"
    cache_dir.mkdir(exist_ok=True)
    timing_path = cache_dir / "tensorrt-timing.cache"
    timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.exists()
                                        else b"")
    config.set_timing_cache(timing, ignore_mismatch=False)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = _calibrator(trt, CalibrationBatches(
            calibration, model.input, calibration_batch, width, height),  # type: ignore[arg-type]
            cache_dir / f"{model_name}-int8.calibration")
        config.set_calibration_profile(profile)
    say(f"building {precision} engine (minutes on a Jetson; the timing cache makes rebuilds "
        "faster)")
    began = time.monotonic()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EdgeError(f"{model_name}: TensorRT could not build the engine (see the log above)")
    timing_path.write_bytes(memoryview(config.get_timing_cache().serialize()))
    name = engine_name(model_name, precision)
    target = models_dir / f"{name.replace('@', '.')}.engine"
    target.write_bytes(memoryview(serialized))
    say(f"wrote {target.name} in {time.monotonic() - began:.0f} s")
    built = ModelEntry(
        name=name, kind=model.kind, format="tensorrt", file=target.name,
        sha256=sha256_file(target), size_bytes=target.stat().st_size, source=model.source,
        input=model.input, outputs=model.outputs, labels=model.labels,
        notes=f"TensorRT engine of {model_name}",
        build=EngineBuild(
            source_model=model_name, onnx_sha256=model.sha256,
            tensorrt_version=runtime.tensorrt_version or trt.__version__,
            gpu_name=runtime.gpu_name or "unknown", compute_capability=runtime.compute_capability,
            l4t_release=runtime.l4t_release, precision=precision,  # type: ignore[arg-type]
            input_shapes=shapes, built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            build_command=command or build_engine_command(model_name, precision, width, height,
                                                     max_batch, calibration)))
    manifest = load_manifest(models_dir)  # the build took a while: merge into the newest
    manifest.models[name] = built
    save_manifest(models_dir, manifest)
    return built


def build_engine_command(model: str, precision: str, width: int, height: int, max_batch: int,
                         calibration: Path | None) -> str:
    """The `edge models build-engine` line that builds this engine again (kept in the
    manifest, shown when the engine no longer fits the box)."""
    parts = ["edge", "models", "build-engine", "--model", model, "--precision", precision,
             "--input-size", f"{width}x{height}", "--max-batch", str(max_batch)]
    if calibration is not None:
        parts += ["--calibration", str(calibration)]
    return shlex.join(parts)


def _calibrator(trt: object, batches: CalibrationBatches, cache: Path) -> object:
    import pycuda.driver as cuda  # pyright: ignore[reportMissingImports]  (ships no stubs)

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[attr-defined,misc]
        def __init__(self) -> None:
            super().__init__()
            self.batches = iter(batches)
            self.device = None

        def get_batch_size(self) -> int:
            return batches.batch

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(self.batches, None)
            if batch is None:
                return None
            if self.device is None:
                self.device = cuda.mem_alloc(batch.nbytes)
            cuda.memcpy_htod(self.device, batch)
            return [int(self.device)]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.exists() else None  # reused across builds

        def write_calibration_cache(self, data: bytes) -> None:
            cache.write_bytes(memoryview(data))

    return EntropyCalibrator()
