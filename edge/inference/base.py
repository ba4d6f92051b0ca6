"""The Engine interface: named inputs in, named outputs out, batch first."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from edge.core.errors import ModelError

Dim = int | str | None


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape (str or None for a dynamic dimension) and NumPy dtype of a tensor."""

    name: str
    shape: tuple[Dim, ...]
    dtype: np.dtype

    @property
    def dynamic_batch(self) -> bool:
        return not isinstance(self.shape[0], int) if self.shape else False


class Engine(ABC):
    """A loaded model. Implementations must be safe to call from one thread at a time."""

    backend: str
    device: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def max_batch(self) -> int | None:
        """Largest batch accepted in one call; None when unbounded."""
        first = self.inputs[0].shape[0] if self.inputs and self.inputs[0].shape else None
        return first if isinstance(first, int) else None

    def check_feeds(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Reject missing inputs, wrong rank or dtype before the back end gives a cryptic error."""
        for spec in self.inputs:
            if spec.name not in feeds:
                raise ModelError(f"input {spec.name!r} not given")
            array = feeds[spec.name]
            if array.ndim != len(spec.shape):
                raise ModelError(f"input {spec.name!r}: expected {len(spec.shape)} dimensions "
                                 f"{spec.shape}, got shape {array.shape}")
            if array.dtype != spec.dtype:
                raise ModelError(f"input {spec.name!r}: expected {spec.dtype}, got {array.dtype}")
            for want, got in zip(spec.shape, array.shape):
                if isinstance(want, int) and want != got:
                    raise ModelError(f"input {spec.name!r}: expected shape {spec.shape}, got "
                                     f"{array.shape}")

    @abstractmethod
    def run(self, feeds: Mapping[str, np.ndarray],
            outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Run one batch; returns the requested outputs (all when None) by name."""

    def run_batched(self, feeds: Mapping[str, np.ndarray],
                    outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """``run``, split along the batch axis where the engine caps the batch (a TensorRT
        profile does; ONNX Runtime does not) and joined again."""
        total = len(next(iter(feeds.values())))
        step = self.max_batch or total
        if total <= step:
            return self.run(feeds, outputs)
        parts = [self.run({k: v[i:i + step] for k, v in feeds.items()}, outputs)
                 for i in range(0, total, step)]
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

    def close(self) -> None:  # noqa: B027 - optional for back ends with nothing to release
        """Release device memory and handles; the engine is unusable afterwards."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
