"""Grade a closed hour: LOF over the person's history, then 3-sigma per component.

The study's flow: an hour whose LOF exceeds the threshold is anomalous; each of the 10
components is then compared with the person's past-week series. Negative components
(sad, angry, fear, negative) fire above mean + 3 sd, positive ones (happy, surprise,
positive) below mean - 3 sd, complex ones (disgust, neutral, complex) above mean + 3 sd.
Each firing adds 1 to the level (0..10). By default the level counts only when LOF
flagged the hour, as the study's flow chart gates grading on the LOF result.

Zero variance: a flat history (sd 0) would make any change, however small, a 3-sigma
event. The standard deviation is therefore floored at ``sigma_floor`` (default 0.01, one
percentage point of probability): a flat component fires only when it moves by more
than 3 x 0.01.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.analytics.lof import local_outlier_factor
from edge.core.emotions import (
    COMPLEX_GROUP,
    COMPONENTS,
    INSUFFICIENT_HISTORY,
    NEGATIVE_GROUP,
    POSITIVE_GROUP,
    RISK_LABELS,
)
from edge.core.records import HourlyVector, RiskGrade
from edge.settings import AnalyticsSettings

_ABOVE = np.array([c in NEGATIVE_GROUP or c in COMPLEX_GROUP for c in COMPONENTS])
_BELOW = np.array([c in POSITIVE_GROUP for c in COMPONENTS])


@dataclass(frozen=True)
class GradingPolicy:
    lof_k: int = 20
    lof_threshold: float = 1.5
    min_history_hours: int = 24
    require_lof_anomaly: bool = True
    level_cuts: tuple[int, int, int] = (1, 3, 5)
    sigma_floor: float = 0.01

    @classmethod
    def from_settings(cls, analytics: AnalyticsSettings) -> GradingPolicy:
        return cls(lof_k=analytics.lof_k, lof_threshold=analytics.lof_threshold,
                   min_history_hours=analytics.min_history_hours,
                   require_lof_anomaly=analytics.require_lof_anomaly,
                   level_cuts=analytics.level_cuts, sigma_floor=analytics.sigma_floor)


def label_for(level: int, cuts: tuple[int, int, int]) -> str:
    """0 -> No risk; then Low, Medium and High from each cut point upwards."""
    return RISK_LABELS[sum(level >= cut for cut in cuts)]


def three_sigma(history: np.ndarray, value: np.ndarray, sigma_floor: float) -> np.ndarray:
    """Boolean (10,): which components of ``value`` pass 3 sigma in their study direction."""
    mean = history.mean(axis=0)
    sd = np.maximum(history.std(axis=0, ddof=1) if len(history) > 1 else 0.0, sigma_floor)
    return (_ABOVE & (value > mean + 3 * sd)) | (_BELOW & (value < mean - 3 * sd))


def grade_hour(hour: HourlyVector, history: np.ndarray, policy: GradingPolicy,
               sigma_history: np.ndarray | None = None) -> RiskGrade:
    """Grade ``hour`` against the person's earlier hours (oldest first, at most the ring).

    LOF runs over ``history``; 3-sigma over ``sigma_history`` (the past week) when given.
    """
    history = np.asarray(history, np.float64).reshape(-1, len(COMPONENTS))
    sigma_history = history if sigma_history is None else np.asarray(sigma_history,
                                                                      np.float64)
    if len(history) < policy.min_history_hours:
        return RiskGrade(hour.person_id, hour.hour_start, "insufficient_history", 0,
                         INSUFFICIENT_HISTORY, None, False, (), len(history))
    value = np.asarray(hour.vector, np.float64)
    score = float(local_outlier_factor(history, value[None], policy.lof_k)[0])
    anomaly = score > policy.lof_threshold
    fired_mask = three_sigma(sigma_history, value, policy.sigma_floor)
    fired = tuple(c for c, f in zip(COMPONENTS, fired_mask) if f)
    level = len(fired) if (anomaly or not policy.require_lof_anomaly) else 0
    return RiskGrade(hour.person_id, hour.hour_start, "graded", level,
                     label_for(level, policy.level_cuts), score, anomaly, fired, len(history))
