# Types for the part of dlib's API the appliance uses. dlib's Python API is a compiled
# pybind11 module that ships no stubs, so a type checker cannot see into it otherwise.
from collections.abc import Sequence

import numpy as np

class point:
    x: int
    y: int

class rectangle:
    def __init__(self, left: int, top: int, right: int, bottom: int) -> None: ...

class full_object_detection:
    def parts(self) -> Sequence[point]: ...

class shape_predictor:
    def __init__(self, path: str) -> None: ...
    def __call__(self, image: np.ndarray, box: rectangle) -> full_object_detection: ...

class face_recognition_model_v1:
    def __init__(self, path: str) -> None: ...
    def compute_face_descriptor(self, chips: list[np.ndarray]) -> Sequence[Sequence[float]]: ...

def get_face_chip(image: np.ndarray, shape: full_object_detection, size: int = ...,
                  padding: float = ...) -> np.ndarray: ...
