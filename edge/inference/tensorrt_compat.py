"""Is a TensorRT engine valid on this box? An engine is bound to the TensorRT version and
the GPU (compute capability) it was built on, and on a Jetson to its JetPack/L4T release.

Which TensorRT: 8.6 to 11. JetPack 6.0 ships 8.6, 6.1 and 6.2 ship 10.3, 7.0 and 7.1 ship
10.13, 7.2 ships 10.16, and TensorRT 11 comes from JetPack 7.2.2 on. Older releases (JetPack
5 ships 8.5 and before) are refused with the upgrade to make.

Everything here runs without TensorRT or a GPU: the runtime facts are gathered defensively
and the decisions are pure functions, so they are tested on any machine. The GPU's name
and compute capability come from CUDA (``edge.inference.cuda_runtime``), and from
``nvidia-smi`` only where CUDA's Python bindings are absent: a Jetson has no nvidia-smi on
JetPack 5, and JetPack 6's reports N/A.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edge.core.errors import ModelError
from edge.core.manifest import Manifest, ModelEntry
from edge.inference.cuda_runtime import device_facts

L4T_RELEASE = Path("/etc/nv_tegra_release")
OLDEST_TENSORRT = (8, 6)
NEWEST_TENSORRT_MAJOR = 11
UPGRADE = ("upgrade the box to JetPack 6.1 or later (TensorRT 10.3+; JetPack 6.0's "
           "TensorRT 8.6 is the oldest supported), or set models.backend = 'onnxruntime'")


@dataclass(frozen=True)
class RuntimeInfo:
    tensorrt_version: str | None
    gpu_name: str | None
    compute_capability: str | None
    l4t_release: str | None


def l4t_release(path: Path = L4T_RELEASE) -> str | None:
    """'R36.3.0' from '# R36 (release), REVISION: 3.0, ...'; None off a Jetson."""
    if not path.is_file():
        return None
    found = re.search(r"R(\d+) \(release\), REVISION: ([0-9.]+)", path.read_text())
    return f"R{found.group(1)}.{found.group(2)}" if found else None


def tensorrt_version(text: str) -> tuple[int, int]:
    """(major, minor) of a TensorRT version string such as '10.13.0.35'."""
    found = re.match(r"(\d+)\.(\d+)", text)
    if found is None:
        raise ModelError(f"TensorRT reports an unreadable version {text!r}")
    return int(found.group(1)), int(found.group(2))


def supported_tensorrt(text: str) -> tuple[int, int]:
    """The version, if this project supports it; else a ModelError with the upgrade."""
    version = tensorrt_version(text)
    if version < OLDEST_TENSORRT:
        raise ModelError(f"TensorRT {text} is older than 8.6, which this appliance needs "
                         "(the name-based tensor API)", UPGRADE)
    if version[0] > NEWEST_TENSORRT_MAJOR:
        raise ModelError(f"TensorRT {text} is newer than this appliance knows (up to 11)",
                         "update the appliance, or set models.backend = 'onnxruntime'")
    return version


def require_tensorrt() -> None:
    """TensorRT's Python module can be imported and is of a supported version; else a
    ModelError that says what is missing: the Python bindings, or the libnvinfer library
    they load. Callers then ``import tensorrt`` themselves, so the type checker reads the
    published TensorRT stubs for every call they make (API drift fails ``make test``)."""
    if not tensorrt_installed():
        raise ModelError("the tensorrt back end needs TensorRT's Python bindings, which are "
                         "not installed here", "on a Jetson: sudo apt install "
                         "python3-libnvinfer (JetPack), then tools/bootstrap.sh --device")
    try:
        import tensorrt
    except ImportError as exc:
        if "libnvinfer" in str(exc) or "libcud" in str(exc):
            raise ModelError(f"TensorRT's Python bindings are here, but a library they load "
                             f"is not ({exc})", "install JetPack's TensorRT runtime "
                             "(sudo apt install libnvinfer10, or nvidia-jetpack)") from None
        raise ModelError(f"TensorRT cannot be imported ({exc})", UPGRADE) from None
    supported_tensorrt(tensorrt.__version__)


def gpu_facts() -> tuple[str | None, str | None]:
    """(GPU name, compute capability): from CUDA, else nvidia-smi; (None, None) where
    neither finds a GPU."""
    facts = device_facts()
    if facts is not None:
        return facts.name, facts.compute_capability
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None, None
    try:
        out = subprocess.run([smi, "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    first = out.strip().splitlines()[0] if out.strip() else ""
    name, _, capability = first.rpartition(",")
    known = [None if value.strip() in ("", "[N/A]", "N/A") else value.strip()
             for value in (name, capability)]
    return known[0], known[1]


def tensorrt_installed() -> bool:
    """TensorRT's Python module is really there: a bare ``tensorrt/`` folder (a namespace
    package, as stub packages leave behind) does not count."""
    spec = importlib.util.find_spec("tensorrt")
    return spec is not None and spec.origin is not None


def runtime_info() -> RuntimeInfo:
    version = None
    if tensorrt_installed():
        try:
            import tensorrt

            version = tensorrt.__version__
        except Exception:
            version = None
    name, capability = gpu_facts()
    return RuntimeInfo(version, name, capability, l4t_release())


def incompatibilities(engine: ModelEntry, runtime: RuntimeInfo,
                      manifest: Manifest | None = None) -> list[str]:
    """Why ``engine`` cannot run here (empty: it can). Each reason names what differs."""
    build = engine.build
    if build is None:
        return [f"{engine.name}: the manifest holds no build record for this engine"]
    reasons = []
    if runtime.tensorrt_version is None:
        reasons.append("TensorRT is not installed here")
    elif (unsupported := _unsupported(runtime.tensorrt_version)) is not None:
        reasons.append(unsupported)
    elif runtime.tensorrt_version != build.tensorrt_version:
        reasons.append(f"built with TensorRT {build.tensorrt_version}, this box has "
                       f"{runtime.tensorrt_version}")
    if runtime.compute_capability is None:
        reasons.append("no NVIDIA GPU found here")
    elif runtime.compute_capability != build.compute_capability:
        reasons.append(f"built for {build.gpu_name} (compute {build.compute_capability}), this "
                       f"box has {runtime.gpu_name} (compute {runtime.compute_capability})")
    if build.l4t_release and runtime.l4t_release and build.l4t_release != runtime.l4t_release:
        reasons.append(f"built on JetPack/L4T {build.l4t_release}, this box runs "
                       f"{runtime.l4t_release}")
    if manifest is not None:
        source = manifest.models.get(build.source_model)
        if source is not None and source.sha256 != build.onnx_sha256:
            reasons.append(f"its ONNX model {build.source_model} has changed since the build")
    return reasons


def _unsupported(version: str) -> str | None:
    try:
        supported_tensorrt(version)
    except ModelError as refusal:
        return str(refusal)
    return None


def engine_for(manifest: Manifest, model_name: str) -> ModelEntry | None:
    """The TensorRT engine built from ``model_name``, if the manifest has one."""
    return next((m for m in manifest.models.values() if m.format == "tensorrt" and m.build
                 and m.build.source_model == model_name), None)
