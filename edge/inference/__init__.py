"""One Engine interface for every back end; stages above this package never learn which runs.

``open_engine`` reads the back end from the settings and the model from the manifest.
"""

from edge.inference.base import Engine, TensorSpec
from edge.inference.factory import available_backends, open_engine, open_model

__all__ = ["Engine", "TensorSpec", "available_backends", "open_engine", "open_model"]
