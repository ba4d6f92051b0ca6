"""User-facing errors.

Anything a person can cause (a bad file, a bad setting, a missing model) is raised as an
``EdgeError`` whose message names the bad input and says what to do next. The CLI prints
it as one line and exits with status 2; a traceback is reserved for our own bugs.
"""

from __future__ import annotations


class EdgeError(Exception):
    """An error the user can fix; ``hint`` says how."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(EdgeError):
    """A setting is wrong: names the key, where it came from, and what is allowed."""


class ImageError(EdgeError):
    """An input image cannot be used: missing, corrupt, empty, too small, wrong type."""


class ModelError(EdgeError):
    """A model is missing, does not match its manifest, or cannot be loaded."""
