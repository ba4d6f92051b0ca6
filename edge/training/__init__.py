"""Training the study's expression classifier (optional extra ``train``: PyTorch, CPU or GPU)."""
