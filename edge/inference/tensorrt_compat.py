"""Is a TensorRT engine valid on this box? An engine is bound to the TensorRT version and
the GPU (compute capability) it was built on, and on a Jetson to its JetPack/L4T release.

Everything here runs without TensorRT or a GPU: the runtime facts are gathered defensively
and the decision is a pure function, so it is tested on any machine.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edge.core.manifest import Manifest, ModelEntry

L4T_RELEASE = Path("/etc/nv_tegra_release")


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


def gpu_facts() -> tuple[str | None, str | None]:
    """(GPU name, compute capability) from nvidia-smi; (None, None) where there is none."""
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
    return (name.strip() or None), (capability.strip() or None)


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


def engine_for(manifest: Manifest, model_name: str) -> ModelEntry | None:
    """The TensorRT engine built from ``model_name``, if the manifest has one."""
    return next((m for m in manifest.models.values() if m.format == "tensorrt" and m.build
                 and m.build.source_model == model_name), None)
