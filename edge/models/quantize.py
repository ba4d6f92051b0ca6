"""One quantization path: a Q/DQ INT8 ONNX model, and an FP16 ONNX copy, in the manifest.

``quantize``: ONNX Runtime's static quantization over a folder of real images, prepared
exactly as the running stage prepares them (``edge.models.calibration``). The result is an
ONNX model with QuantizeLinear/DequantizeLinear pairs: INT8 weights per output channel and
INT8 activations, both symmetric (zero point 0), the form TensorRT accepts for explicit
quantization. The same file runs on ONNX Runtime on the CPU (VNNI where the CPU has it) and
builds a strongly typed INT8 engine on TensorRT 10 and 11 (``edge models build-engine
--precision int8``). It replaces TensorRT's implicit INT8 calibration, which TensorRT 11
removed.

``convert_fp16``: weights and arithmetic in FP16 with FP32 inputs and outputs
(onnxconverter-common), the only way to an FP16 engine on TensorRT 11.

Each new entry (``MODEL-int8``, ``MODEL-fp16``) records what it was made from and how
(``Derivation``); select it in the settings (``models.detector``/``models.expression``).
"""

from __future__ import annotations

import shlex
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import onnx
import onnx.version_converter

from edge.core.clock import utc_text
from edge.core.errors import EdgeError
from edge.core.manifest import (
    Derivation,
    ModelEntry,
    add_entry,
    entry,
    load_manifest,
    model_path,
    sha256_file,
)
from edge.models.calibration import CalibrationBatches

QDQ_OPSET = 13


def _derived_entry(models_dir: Path, source: ModelEntry, target: Path,
                   precision: Literal["fp16", "int8"], method: str, images: int | None,
                   command: str) -> ModelEntry:
    made = source.model_copy(update={
        "name": f"{source.name}-{precision}", "file": target.name,
        "sha256": sha256_file(target), "size_bytes": target.stat().st_size,
        "notes": f"{precision.upper()} ONNX made from {source.name}",
        "derived": Derivation(
            source_model=source.name, source_sha256=source.sha256, precision=precision,
            method=method, calibration_images=images,
            made_at=utc_text(datetime.now(timezone.utc)),
            command=command)})
    return add_entry(models_dir, made)


def _fp32_onnx(models_dir: Path, model_name: str) -> ModelEntry:
    source = entry(load_manifest(models_dir), model_name, models_dir)
    if source.format != "onnx" or source.precision != "fp32":
        raise EdgeError(f"{model_name}: is not an FP32 ONNX model",
                        "give the original ONNX entry (edge models doctor lists them)")
    return source


def _prepared(path: Path, scratch: Path) -> tuple[Path, list[str]]:
    """The model to quantize, at opset ``QDQ_OPSET`` or later (per-channel DequantizeLinear,
    its ``axis``, needs 13), and the nodes kept in FP32: those that make the model's outputs,
    and every Softmax (a quantized softmax or final layer flattens the class probabilities;
    they cost little)."""
    model = onnx.load(str(path))
    outputs = {o.name for o in model.graph.output}
    kept = [n.name for n in model.graph.node
            if n.name and (n.op_type == "Softmax" or outputs & set(n.output))]
    current = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if current >= QDQ_OPSET:
        return path, kept
    upgraded = scratch / f"{path.stem}-opset{QDQ_OPSET}.onnx"
    onnx.save(onnx.version_converter.convert_version(model, QDQ_OPSET), str(upgraded))
    return upgraded, kept


def quantize(models_dir: Path, model_name: str, calibration: Path, *, width: int = 640,
             height: int = 480, limit: int = 200) -> ModelEntry:
    """``model_name``-int8: Q/DQ INT8 with ranges from at most ``limit`` images of
    ``calibration`` (frames for the detector, face crops for the expression model)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    source = _fp32_onnx(models_dir, model_name)
    if source.input is None:
        raise EdgeError(f"{model_name}: the manifest gives no input description")
    batches = CalibrationBatches(calibration, source.input, 1, width, height, limit=limit)
    input_name = source.input.name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches: Iterator[Any] = iter(batches)

        def get_next(self) -> dict[str, Any]:
            batch = next(self._batches, None)  # an empty dict ends the calibration
            return {} if batch is None else {input_name: batch}

    target = models_dir / f"{Path(source.file).stem}-int8.onnx"
    method = ("onnxruntime quantize_static: QDQ, per-channel symmetric INT8 weights, "
              "symmetric INT8 activations, ranges at the 99.999th percentile; the output "
              "nodes and softmax kept in FP32")
    with tempfile.TemporaryDirectory() as scratch:  # the calibrator's augmented model
        prepared, kept = _prepared(model_path(models_dir, source), Path(scratch))
        quantize_static(
            str(prepared), str(target), Reader(), nodes_to_exclude=kept,
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.Percentile,
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                           "CalibTensorRangeSymmetric": True,
                           "TempDir": scratch})
    command = shlex.join(["edge", "models", "quantize", "--model", model_name,
                          "--calibration", str(calibration)])
    return _derived_entry(models_dir, source, target, "int8", method, len(batches), command)


def convert_fp16(models_dir: Path, model_name: str) -> ModelEntry:
    """``model_name``-fp16: FP16 weights and arithmetic, FP32 inputs and outputs."""
    from onnxconverter_common import float16  # pyright: ignore[reportMissingTypeStubs]

    source = _fp32_onnx(models_dir, model_name)
    model = onnx.load(str(model_path(models_dir, source)))
    converted = float16.convert_float_to_float16(model, keep_io_types=True)
    target = models_dir / f"{Path(source.file).stem}-fp16.onnx"
    onnx.save(converted, str(target))
    command = shlex.join(["edge", "models", "convert", "--model", model_name, "--to", "fp16"])
    return _derived_entry(models_dir, source, target, "fp16",
                          "onnxconverter-common float16, FP32 inputs and outputs kept", None,
                          command)
