"""Models: the pinned sources, the manifest in ``engines/``, and their preparation."""
