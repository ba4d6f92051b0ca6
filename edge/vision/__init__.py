"""Vision stages: detect, align, identify, classify expression. No I/O beyond reading images."""
