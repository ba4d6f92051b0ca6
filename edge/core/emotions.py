"""The 10-D emotion vector's components and the study's risk directions and labels."""

from __future__ import annotations

# The 10-D emotion vector: 7 class probabilities, then three group sums.
COMPONENTS = ("happy", "sad", "angry", "disgust", "fear", "surprise", "neutral",
              "positive", "negative", "complex")
BASIC_EMOTIONS = COMPONENTS[:7]
GROUPS = {
    "positive": ("happy", "surprise"),
    "negative": ("sad", "angry", "fear"),
    "complex": ("disgust", "neutral"),
}

NEGATIVE_GROUP = ("sad", "angry", "fear", "negative")      # fires above mean + 3 sd
POSITIVE_GROUP = ("happy", "surprise", "positive")         # fires below mean - 3 sd
COMPLEX_GROUP = ("disgust", "neutral", "complex")          # fires above mean + 3 sd
if sorted(NEGATIVE_GROUP + POSITIVE_GROUP + COMPLEX_GROUP) != sorted(COMPONENTS):
    raise RuntimeError("the risk directions must cover each component exactly once")

NO_RISK = "No risk"
INSUFFICIENT_HISTORY = "Insufficient history"  # too early to judge: never shown as "No risk"
RISK_LABELS = (NO_RISK, "Low risk", "Medium risk", "High risk")
