"""A constant-velocity Kalman filter for a face box, as SORT and ByteTrack use.

State: centre x, centre y, width, height and their velocities (pixels a frame). Two faces
that cross keep their tracks because each is matched where its motion says it will be,
not where it was. The noise levels are SORT's, scaled by the box size so a near face and a
far one are treated alike.
"""

from __future__ import annotations

import numpy as np

_F = np.eye(8)
_F[:4, 4:] = np.eye(4)           # position += velocity, one frame
_H = np.eye(4, 8)                # we observe the box, not its velocity
# per frame, as fractions of the box's size: position 0.05, velocity 0.0125 (squared)
_PROCESS_NOISE = np.diag(np.r_[np.full(4, 0.05 ** 2), np.full(4, 0.0125 ** 2)])


def _xywh(box: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], np.float64)


def _corners(state: np.ndarray) -> np.ndarray:
    cx, cy, w, h = state[:4]
    w, h = max(w, 1.0), max(h, 1.0)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)


class BoxKalman:
    def __init__(self, box: np.ndarray) -> None:
        self.mean = np.zeros(8)
        self.mean[:4] = _xywh(box)
        size = max(self.mean[2], self.mean[3], 1.0)
        self.covariance = np.diag(np.r_[np.full(4, (0.1 * size) ** 2),
                                        np.full(4, (0.2 * size) ** 2)])

    def predict(self) -> np.ndarray:
        """Move one frame ahead; the predicted box."""
        self.mean = _F @ self.mean
        size = max(self.mean[2], self.mean[3], 1.0)
        self.covariance = _F @ self.covariance @ _F.T + _PROCESS_NOISE * size * size
        return self.box

    def ahead(self) -> np.ndarray:
        """The box one frame ahead, without moving there (``predict`` moves)."""
        return _corners(_F @ self.mean)

    def update(self, box: np.ndarray) -> None:
        size = max(self.mean[2], self.mean[3], 1.0)
        measurement_noise = np.eye(4) * (0.05 * size) ** 2
        innovation = _xywh(box) - _H @ self.mean
        system = _H @ self.covariance @ _H.T + measurement_noise
        gain = self.covariance @ _H.T @ np.linalg.inv(system)
        self.mean = self.mean + gain @ innovation
        self.covariance = (np.eye(8) - gain @ _H) @ self.covariance

    @property
    def box(self) -> np.ndarray:
        return _corners(self.mean)
