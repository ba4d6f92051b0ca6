"""The bottom layer: the vocabulary every other layer shares.

Records, emotion components, clocks and time helpers, errors, logging and the model
manifest. Nothing here imports anything of ``edge`` outside ``edge.core``, so every other
module can use it without an import pointing up (the layers are checked by import-linter,
see ``[tool.importlinter]`` in pyproject.toml).
"""
