"""The package's shape: imports point down the layers, no cycles, and the device runtime
runs without the demo's dependencies. Each check has a positive control that breaks it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge.settings import read_toml

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter on the package under ``root`` with the project's own contracts."""
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, text=True,
                          capture_output=True, env={"PYTHONPATH": str(root), "PATH": "/usr/bin"},
                          timeout=120)


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(REPO / "edge", root / "edge", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_package_keeps_its_contracts(package_copy: Path) -> None:
    result = lint_imports(package_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "broken"), [
    # an import up the layers, hidden inside a function as lazy imports are
    ("edge/store.py", "def _up():\n    from edge.service import lifecycle\n",
     "Imports point down the layers"),
    # a cycle between two siblings of one package
    ("edge/vision/boxes.py", "def _cycle():\n    from edge.vision import detect\n",
     "No import cycles"),
])
def test_a_broken_contract_is_caught(package_copy: Path, tmp_path: Path, module: str,
                                     line: str, broken: str) -> None:
    root = tmp_path / "broken"
    shutil.copytree(package_copy, root)
    with (root / module).open("a") as handle:
        handle.write("\n\n" + line)
    result = lint_imports(root)
    assert result.returncode != 0
    assert f"{broken}" in result.stdout and "BROKEN" in result.stdout


BLOCK_DEMO_PACKAGES = textwrap.dedent("""
    import sys

    # as if not installed: `import` raises ImportError, importlib.util.find_spec says None;
    # the demo's packages, and the collector's (the `central` extra) that a box never gets
    for name in ("skimage", "matplotlib", "starlette", "uvicorn", "jinja2", "argon2",
                 "psycopg", "prometheus_client", "multipart", "python_multipart",
                 "itsdangerous"):
        sys.modules[name] = None
""")

def run_without_demo_packages(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "device.py"
    script.write_text(BLOCK_DEMO_PACKAGES + textwrap.dedent(code))
    return subprocess.run([sys.executable, str(script)], text=True, capture_output=True,
                          timeout=300, cwd=tmp_path)


def test_the_device_runtime_needs_no_demo_packages(tmp_path: Path, models_dir: Path) -> None:
    """What tools/install.sh puts on a box runs without scikit-image and matplotlib."""
    dependencies = read_toml(REPO / "pyproject.toml")["project"]
    runtime = " ".join(dependencies["dependencies"])
    assert "scikit-image" not in runtime and "matplotlib" not in runtime
    assert {"scikit-image>=0.22", "matplotlib>=3.7"} <= set(
        dependencies["optional-dependencies"]["demo"])
    models = tmp_path / "engines"
    shutil.copytree(models_dir, models, ignore=shutil.ignore_patterns(".cache"),
                    copy_function=shutil.copy)
    result = run_without_demo_packages(f"""
        import importlib, pkgutil, edge
        runtime = [m.name for m in pkgutil.walk_packages(edge.__path__, "edge.")
                   if not m.name.startswith(("edge.demos", "edge.training", "edge.central."))
                   or m.name == "edge.central.alerts"]
        for name in runtime:
            importlib.import_module(name)
        from edge.core.manifest import load_manifest, save_manifest
        from edge.models.prepare import prepare_models
        from edge.settings import Settings
        from edge.vision.loader import VisionModels
        from pathlib import Path
        manifest = load_manifest(Path({str(models)!r}))
        manifest.verified_on = None
        save_manifest(Path({str(models)!r}), manifest)
        prepare_models(Path({str(models)!r}), progress=print)
        VisionModels.load(Settings.model_validate({{"models": {{"dir": {str(models)!r}}}}}))
        print("imported", len(runtime), "runtime modules")
        from edge.cli import main
        print("central exit", main(["central", "user", "list"]))
        from edge.demos import samples
        try:
            samples.astronaut()
        except ImportError as exc:
            print("control:", exc)
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "self-check skipped" in result.stdout
    assert "imported" in result.stdout
    # `edge central` on a box: one line that says what to install, no traceback
    assert "central exit 2" in result.stdout
    assert "error: the collector's packages are not installed here" in result.stderr
    assert "Traceback" not in result.stderr
    assert "control: import of skimage halted" in result.stdout  # the blocker does block
