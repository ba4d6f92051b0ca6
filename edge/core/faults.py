"""A fault the service reports: said once when it begins and once when it ends.

A full disk or a wrong clock lasts; logging it on every frame would bury everything else,
and logging it never would leave the operator guessing. ``update`` is called as often as
the condition is checked; only the changes are logged.
"""

from __future__ import annotations

from edge.core.logs import get_logger

log = get_logger(__name__)


class Fault:
    def __init__(self, began: str, ended: str, action: str) -> None:
        self.began, self.ended, self.action = began, ended, action
        self.problem: str | None = None  # what is wrong now; None while all is well

    def update(self, problem: str | None, action: str | None = None) -> None:
        """Record the condition now; ``action``: what is done about it, when it differs."""
        if problem is not None and self.problem is None:
            log.error(self.began, problem=problem, action=action or self.action)
        elif problem is None and self.problem is not None:
            log.info(self.ended, problem=self.problem)
        self.problem = problem
