"""Demos, the simulator, generated clips, sample photos and a throwaway broker.

Nothing in the device runtime imports this package, and its dependencies (matplotlib,
scikit-image) come with the ``demo`` extra that `make demo` and `make test` install and
`tools/install.sh` does not.
"""
