"""The model manifest (``engines/manifest.json``): what each model file is and how to feed it.

Everything a stage needs to use a model lives here rather than in code: input layout, size,
colour order, normalisation, output names and class labels in order. That is what lets a
VGG16 trained elsewhere, with its classes in another order, replace the shipped expression
model without a code change.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.core.errors import ModelError

ModelKind = Literal["detector", "expression", "landmarks", "descriptor"]
MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1
ONNX_SUFFIX = "-onnx"  # the name of a model converted to ONNX: its source's name and this


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    package: str
    version: str
    member: str = Field(description="path of the original file inside the package")
    licence: str
    package_sha256: str | None = Field(default=None, description="sha256 of the downloaded wheel")
    original_sha256: str | None = Field(default=None,
                                        description="sha256 of the file before conversion")
    conversion: str | None = None


class InputSpec(BaseModel):
    """How to turn pixels into the model's input: ``(pixels - mean) * scale``."""

    model_config = ConfigDict(extra="forbid")
    name: str
    layout: Literal["NCHW", "NHWC", "HWC"]
    height: int | None = Field(default=None, description="None: any height (fully convolutional)")
    width: int | None = None
    colour: Literal["BGR", "RGB", "GRAY"]
    mean: list[float]
    scale: float


class EngineBuild(BaseModel):
    """What a TensorRT engine is bound to: it is valid only where all of this holds."""

    model_config = ConfigDict(extra="forbid")
    source_model: str = Field(description="manifest name of the ONNX model it was built from")
    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    l4t_release: str | None = Field(default=None, description="JetPack/L4T release on a Jetson")
    precision: Literal["fp32", "fp16", "int8"]
    input_shapes: dict[str, list[list[int]]] = Field(
        description="per input: [min, opt, max] shapes of the optimisation profile")
    built_at: str
    build_command: str


class Derivation(BaseModel):
    """How an ONNX model was made from another: an FP16 copy, or a Q/DQ INT8 model (the
    one quantized file both back ends run: ONNX Runtime on the CPU, TensorRT as a strongly
    typed INT8 engine)."""

    model_config = ConfigDict(extra="forbid")
    source_model: str
    source_sha256: str
    precision: Literal["fp16", "int8"]
    method: str = Field(description="the tool and its settings")
    calibration_images: int | None = Field(default=None,
                                           description="images the INT8 ranges came from")
    made_at: str
    command: str


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    kind: ModelKind
    format: Literal["onnx", "dlib", "tensorrt"]
    file: str = Field(description="path relative to the manifest's folder")
    sha256: str
    size_bytes: int
    source: Source
    input: InputSpec | None = None
    outputs: list[str] = []
    labels: list[str] | None = None
    notes: str = ""
    build: EngineBuild | None = None  # TensorRT engines only
    derived: Derivation | None = None  # ONNX models made from another entry

    @property
    def precision(self) -> Literal["fp32", "fp16", "int8"]:
        """The precision the file itself holds."""
        if self.build is not None:
            return self.build.precision
        return self.derived.precision if self.derived is not None else "fp32"


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int = SCHEMA_VERSION
    verified_on: str | None = Field(default=None,
                                    description="what the self-check ran on, and when")
    models: dict[str, ModelEntry] = {}


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def load_manifest(models_dir: Path) -> Manifest:
    path = models_dir / MANIFEST_NAME
    if not path.is_file():
        raise ModelError(f"{path}: no model manifest",
                         "run `edge models prepare` (or `make models`) first")
    try:
        return Manifest.model_validate_json(path.read_text())
    except (ValidationError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: manifest is damaged ({str(exc).splitlines()[0]})",
                         "run `edge models prepare --force` to rebuild it") from None


def save_manifest(models_dir: Path, manifest: Manifest) -> Path:
    path = models_dir / MANIFEST_NAME
    tmp = path.with_suffix(".tmp")
    tmp.write_text(manifest.model_dump_json(indent=2) + "\n")
    tmp.replace(path)
    return path


def add_entry(models_dir: Path, made: ModelEntry) -> ModelEntry:
    """Record a model made from another (an engine, a quantized copy) in the manifest as it
    is now on disk: making it took a while, and the file may have changed meanwhile."""
    manifest = load_manifest(models_dir)
    manifest.models[made.name] = made
    save_manifest(models_dir, manifest)
    return made


def entry(manifest: Manifest, name: str, models_dir: Path) -> ModelEntry:
    """The entry called ``name``; raise a ModelError naming what is there instead."""
    found = manifest.models.get(name)
    if found is None:
        known = ", ".join(sorted(manifest.models)) or "none"
        raise ModelError(f"{models_dir / MANIFEST_NAME}: no model named {name!r} "
                         f"(known: {known})", "check [models] in the settings")
    return found


def model_path(models_dir: Path, model: ModelEntry) -> Path:
    return models_dir / model.file


def file_problem(models_dir: Path, model: ModelEntry) -> str | None:
    """What is wrong with the model's file against its manifest entry, or None."""
    path = model_path(models_dir, model)
    try:
        actual = sha256_file(path)
    except FileNotFoundError:
        return f"{model.name}: {path} is missing"
    except OSError as exc:
        return f"{model.name}: {path} cannot be read ({exc.strerror or exc})"
    if actual != model.sha256:
        return (f"{model.name}: {path} sha256 is {actual[:12]}..., the manifest says "
                f"{model.sha256[:12]}... (damaged or replaced)")
    return None


def verified_model_path(models_dir: Path, model: ModelEntry) -> Path:
    """The model's file, checked against the manifest's sha256 before anything loads it: a
    damaged file gives this one error, not a crash somewhere inside dlib or a runtime."""
    problem = file_problem(models_dir, model)
    if problem is not None:
        raise ModelError(problem, "run `edge models prepare --force` to rebuild the models")
    return model_path(models_dir, model)


def verify_files(models_dir: Path, manifest: Manifest) -> list[str]:
    """Problems found when re-checking every file against its manifest entry (empty: all ok)."""
    return [problem for _name, model in sorted(manifest.models.items())
            if (problem := file_problem(models_dir, model)) is not None]
