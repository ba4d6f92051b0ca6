"""The lawful-use gate: nothing is analysed before the operator declares why (README)."""

from __future__ import annotations

from edge.core.errors import EdgeError
from edge.settings import Settings


def check_lawful_use(settings: Settings) -> None:
    """No expression analysis without a declared purpose and legal basis (EU AI Act
    Art. 5(1)(f) allows emotion inference at work only for medical or safety reasons)."""
    deployment = settings.deployment
    if deployment.purpose is None or not deployment.legal_basis.strip():
        raise EdgeError(
            "expression analysis is not allowed until [deployment] purpose (medical, safety "
            "or research) and legal_basis are declared in the settings",
            "read the README section 'Lawful use' (EU AI Act Art. 5(1)(f), GDPR Art. 9)")
