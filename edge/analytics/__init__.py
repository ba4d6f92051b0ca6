"""Hourly aggregation, ring buffers, LOF (Manhattan) and 3-sigma risk grading."""
