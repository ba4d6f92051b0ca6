from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edge.core.errors import ModelError
from edge.core.manifest import load_manifest, sha256_file
from edge.inference import open_engine
from edge.inference.onnxruntime_backend import providers_for


@pytest.fixture(scope="module")
def expression_engine(models_dir: Path):
    return open_engine(models_dir, load_manifest(models_dir).models["fer-mini-xception"],
                       device="cpu")


def test_engine_describes_its_tensors(expression_engine) -> None:
    (spec,) = expression_engine.inputs
    assert (spec.name, spec.shape[1:], spec.dtype) == ("input", (1, 64, 64), np.float32)
    assert spec.dynamic_batch and expression_engine.max_batch is None
    assert [o.name for o in expression_engine.outputs] == ["probabilities"]
    assert (expression_engine.backend, expression_engine.device) == ("onnxruntime", "cpu")


def test_batch_results_equal_single_results(expression_engine) -> None:
    batch = np.random.default_rng(1).uniform(-1, 1, (3, 1, 64, 64)).astype(np.float32)
    together = expression_engine.run({"input": batch})["probabilities"]
    for i in range(3):
        alone = expression_engine.run({"input": batch[i:i + 1]})["probabilities"]
        np.testing.assert_allclose(alone[0], together[i], atol=1e-6)


@pytest.mark.parametrize(("feeds", "message"), [
    ({}, "input 'input' not given"),
    ({"input": np.zeros((1, 64, 64), np.float32)}, "expected 4 dimensions"),
    ({"input": np.zeros((1, 1, 64, 64), np.float64)}, "expected float32, got float64"),
    ({"input": np.zeros((1, 3, 64, 64), np.float32)}, "expected shape"),
])
def test_bad_feeds_are_named(expression_engine, feeds: dict, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        expression_engine.run(feeds)


def test_backend_choice_errors(models_dir: Path) -> None:
    manifest = load_manifest(models_dir)
    with pytest.raises(ModelError, match="needs ONNX"):
        open_engine(models_dir, manifest.models["dlib-resnet-v1"])
    with pytest.raises(ModelError, match="is not a TensorRT engine"):
        open_engine(models_dir, manifest.models["fer-mini-xception"], backend="tensorrt")
    with pytest.raises(ModelError, match=r"fer_mini_xception\.onnx is missing"):
        open_engine(models_dir / "absent", manifest.models["fer-mini-xception"])


def test_cuda_is_used_only_when_present() -> None:
    assert providers_for("cpu") == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert providers_for("auto")[0] == "CUDAExecutionProvider"
    else:
        assert providers_for("auto") == ["CPUExecutionProvider"]
        with pytest.raises(ModelError, match="install onnxruntime-gpu"):
            providers_for("cuda")


def test_a_file_that_is_not_onnx_is_refused(models_dir: Path, tmp_path: Path) -> None:
    entry = load_manifest(models_dir).models["fer-mini-xception"]
    garbage = tmp_path / entry.file
    garbage.write_bytes(b"\x00garbage")
    with pytest.raises(ModelError, match="damaged or replaced"):  # the manifest's sha256
        open_engine(tmp_path, entry)
    # a manifest that vouches for the garbage: ONNX Runtime's own refusal, still one line
    vouched = entry.model_copy(update={"sha256": sha256_file(garbage)})
    with pytest.raises(ModelError, match="ONNX Runtime cannot load it"):
        open_engine(tmp_path, vouched)


def test_run_batched_splits_where_the_engine_caps_the_batch(models_dir: Path,
                                                             expression_engine) -> None:
    from edge.inference.onnxruntime_backend import OnnxRuntimeEngine

    class CappedAtTwo(OnnxRuntimeEngine):  # as a TensorRT profile with max batch 2 would be
        calls = 0

        @property
        def max_batch(self) -> int:
            return 2

        def run(self, feeds, outputs=None):
            assert len(feeds["input"]) <= 2
            CappedAtTwo.calls += 1
            return super().run(feeds, outputs)

    entry = load_manifest(models_dir).models["fer-mini-xception"]
    capped = CappedAtTwo(models_dir / entry.file, device="cpu")
    batch = np.random.default_rng(4).uniform(-1, 1, (5, 1, 64, 64)).astype(np.float32)
    together = capped.run_batched({"input": batch})["probabilities"]
    assert CappedAtTwo.calls == 3 and together.shape == (5, 7)
    np.testing.assert_allclose(together, expression_engine.run({"input": batch})[
        "probabilities"], atol=1e-6)
