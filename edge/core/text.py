"""Text that reaches a terminal: whatever a file, a payload or a setting says, it is printed
as visible characters. A control character (an escape sequence could clear the screen and
print a fake "All clear") is shown as its escape, e.g. ``\\x1b``."""

from __future__ import annotations


def printable(value: object) -> str:
    """``str(value)`` with every non-printable character escaped (newlines and tabs too)."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)
