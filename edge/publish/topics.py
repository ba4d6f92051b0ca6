"""The topic tree: ``<prefix>/<site>/<device>/{status, risk/<pseudonym>, stats}``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    prefix: str
    site: str
    device: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.site}/{self.device}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def stats(self) -> str:
        return f"{self.base}/stats"

    def risk(self, pseudonym: str) -> str:
        return f"{self.base}/risk/{pseudonym}"

    @staticmethod
    def all_risk(prefix: str) -> str:
        """The central side's subscription: every site's every device."""
        return f"{prefix}/+/+/risk/+"

    @staticmethod
    def all_status(prefix: str) -> str:
        return f"{prefix}/+/+/status"
