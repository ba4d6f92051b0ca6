"""ONNX -> TensorRT engine, TensorRT 8.6 to 11, recorded in the manifest.

Precision comes from one place per TensorRT generation (``build_plan``), because TensorRT 11
removed the builder's precision flags and implicit INT8 calibration: its networks are
strongly typed, and the ONNX file says what runs in which precision.

- fp32: the ONNX model as it is; TF32 off, so the engine matches ONNX Runtime.
- fp16: TensorRT 8.6 and 10 lower an FP32 model with the FP16 flag; TensorRT 11 builds the
  FP16 ONNX copy (``edge models convert --to fp16``) strongly typed.
- int8: the Q/DQ ONNX model (``edge models quantize``), the same file ONNX Runtime runs on
  the CPU: strongly typed on TensorRT 10 and 11, with the INT8 flag on 8.6 (explicit
  quantization, no calibrator).

TensorRT 8.6 (JetPack 6.0) needs the explicit-batch network flag; later versions have no
other kind. The detector gets a fixed input size (the settings' ``detection.input_width/
height``), batch 1; the expression model and the descriptor network a dynamic batch from 1
to ``max_batch``. A timing cache speeds up rebuilds. The manifest entry records the ONNX
sha256, TensorRT version, GPU and compute capability, L4T release, precision, profile
shapes, build date and the command.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from edge.core.errors import EdgeError
from edge.core.manifest import (
    EngineBuild,
    Manifest,
    ModelEntry,
    add_entry,
    entry,
    load_manifest,
    model_path,
    sha256_file,
)
from edge.inference.tensorrt_compat import require_tensorrt, runtime_info, supported_tensorrt

Precision = Literal["fp32", "fp16", "int8"]


@dataclass(frozen=True)
class BuildPlan:
    """How one TensorRT version builds one precision: flags by name."""

    network_flags: tuple[str, ...]   # NetworkDefinitionCreationFlag members
    builder_flags: tuple[str, ...]   # BuilderFlag members to set
    cleared_flags: tuple[str, ...]   # BuilderFlag members to clear (where they exist)


def build_plan(version: tuple[int, int], precision: Precision,
               onnx_precision: Precision = "fp32") -> BuildPlan:
    """The flags for ``precision`` on TensorRT ``version`` from an ONNX model holding
    ``onnx_precision``; an EdgeError naming the command that makes the right ONNX model."""
    legacy, typed = version < (10, 0), version >= (11, 0)
    if precision == "int8" and onnx_precision != "int8":
        raise EdgeError("INT8 engines are built from a quantized (Q/DQ) ONNX model",
                        "make one: edge models quantize --model MODEL --calibration FOLDER, "
                        "then build from MODEL-int8")
    if precision != "int8" and onnx_precision == "int8":
        raise EdgeError("a quantized (Q/DQ) ONNX model builds only an int8 engine",
                        "use --precision int8")
    if precision == "fp32" and onnx_precision != "fp32":
        raise EdgeError("an fp32 engine needs the FP32 ONNX model", "build from the original")
    if precision == "fp16" and typed and onnx_precision != "fp16":
        raise EdgeError("TensorRT 11 has no FP16 flag: fp16 engines are built from an FP16 "
                        "ONNX model", "make one: edge models convert --model MODEL --to fp16, "
                        "then build from MODEL-fp16")
    explicit = ("EXPLICIT_BATCH",) if legacy else ()
    if precision == "fp32":
        return BuildPlan(explicit, (), ("TF32",))
    if precision == "fp16":
        if onnx_precision == "fp16" and not legacy:
            return BuildPlan(("STRONGLY_TYPED",) if not typed else (), (), ())
        return BuildPlan(explicit, ("FP16",), ())
    if legacy:  # 8.6: explicit quantization in a weakly typed network
        return BuildPlan(explicit, ("INT8", "FP16"), ())
    return BuildPlan(("STRONGLY_TYPED",) if not typed else (), (), ())


def source_for(manifest: Manifest, model: str, precision: Precision) -> str:
    """The ONNX entry an engine of ``precision`` is built from: the copy made from ``model``
    for that precision (``model``-int8 from ``edge models quantize``, ``model``-fp16 from
    ``edge models convert``) where there is one, else ``model`` itself."""
    if precision == "fp32":
        return model
    made = next((m.name for m in manifest.models.values() if m.derived is not None
                 and m.derived.source_model == model and m.precision == precision), None)
    return made or model


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


def build_engine(models_dir: Path, model_name: str, *, precision: Precision = "fp16",
                 width: int = 640, height: int = 480, max_batch: int = 32,
                 workspace_mb: int = 1024, command: str | None = None,
                 progress: Callable[[str], None] | None = None) -> ModelEntry:
    say = progress or (lambda m: print(f"[engine] {m}", file=sys.stderr, flush=True))
    require_tensorrt()
    import tensorrt as trt

    version = supported_tensorrt(trt.__version__)
    manifest = load_manifest(models_dir)
    asked = entry(manifest, model_name, models_dir)
    model = entry(manifest, source_for(manifest, model_name, precision), models_dir)
    if model.format != "onnx":
        raise EdgeError(f"{model_name}: is a {model.format} file; build from an ONNX entry")
    plan = build_plan(version, precision, model.precision)
    runtime = runtime_info()
    if runtime.compute_capability is None:
        raise EdgeError("no NVIDIA GPU found (CUDA sees none)", "build on the box that runs it")
    onnx_path = model_path(models_dir, model)
    shapes = profile_shapes(model, width, height, max_batch)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(_flag_bits(trt.NetworkDefinitionCreationFlag,
                                                plan.network_flags))
    parser = trt.OnnxParser(network, logger)
    say(f"parsing {onnx_path.name}" + (f" (for {asked.name})" if model is not asked else ""))
    if not parser.parse_from_file(str(onnx_path)):  # external weights load beside it
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EdgeError(f"{onnx_path}: TensorRT cannot parse it ({errors})")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    for flag in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    for flag in plan.cleared_flags:
        if hasattr(trt.BuilderFlag, flag):
            config.clear_flag(getattr(trt.BuilderFlag, flag))
    profile = builder.create_optimization_profile()
    for name, (low, opt, high) in shapes.items():
        profile.set_shape(name, trt.Dims(low), trt.Dims(opt), trt.Dims(high))
    config.add_optimization_profile(profile)
    cache_dir = models_dir / ".cache"
    cache_dir.mkdir(exist_ok=True)
    timing_path = cache_dir / f"tensorrt-{trt.__version__}-timing.cache"
    timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.exists()
                                        else b"")
    if not config.set_timing_cache(timing, ignore_mismatch=False):
        say("the timing cache does not fit this TensorRT or GPU; building without it")
    say(f"building {precision} engine with TensorRT {trt.__version__} (minutes on a Jetson; "
        "the timing cache makes rebuilds faster)")
    began = time.monotonic()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EdgeError(f"{model_name}: TensorRT could not build the engine (see the log above)")
    name = engine_name(model.name, precision)
    target = models_dir / f"{name.replace('@', '.')}.engine"
    target.write_bytes(memoryview(serialized))
    cache = config.get_timing_cache()
    if cache is not None:  # after the engine: a failed build must not leave a changed cache
        timing_path.write_bytes(memoryview(cache.serialize()))
    say(f"wrote {target.name} in {time.monotonic() - began:.0f} s")
    built = ModelEntry(
        name=name, kind=model.kind, format="tensorrt", file=target.name,
        sha256=sha256_file(target), size_bytes=target.stat().st_size, source=model.source,
        input=model.input, outputs=model.outputs, labels=model.labels,
        notes=f"TensorRT engine of {model.name}",
        build=EngineBuild(
            source_model=model.name, onnx_sha256=model.sha256,
            tensorrt_version=runtime.tensorrt_version or trt.__version__,
            gpu_name=runtime.gpu_name or "unknown", compute_capability=runtime.compute_capability,
            l4t_release=runtime.l4t_release, precision=precision,
            input_shapes=shapes, built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            build_command=command or build_engine_command(model.name, precision, width, height,
                                                     max_batch)))
    return add_entry(models_dir, built)  # the build took a while: into the newest manifest


def _flag_bits(flags: Any, names: tuple[str, ...]) -> int:
    """TensorRT's flag bit field from member names (``1 << int(member)``)."""
    return sum(1 << int(getattr(flags, name)) for name in names)


def build_engine_command(model: str, precision: str, width: int, height: int,
                         max_batch: int) -> str:
    """The `edge models build-engine` line that builds this engine again (kept in the
    manifest, shown when the engine no longer fits the box)."""
    return shlex.join(["edge", "models", "build-engine", "--model", model, "--precision",
                       precision, "--input-size", f"{width}x{height}", "--max-batch",
                       str(max_batch)])
