"""`edge reveal` and `edge audit`: from an alert's pseudonym to a person, only on the device
that made it, and never without a row in the audit log."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from edge.cli import main
from edge.core.records import RiskGrade
from edge.publish.outbox import alerts_for
from edge.publish.payload import RiskAlert
from edge.secrets import device_key
from edge.settings import Settings
from edge.store import Store


@pytest.fixture
def device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("EDGE_STORAGE__STATE_DIR", str(state))
    monkeypatch.setenv("EDGE_CONFIG", "/dev/null")
    monkeypatch.setenv("USER", "technician")
    with Store(state) as store:
        store.enroll("E-1001", "CONSENT-77", date(2026, 1, 5), [])
        store.enroll("E-1002", "CONSENT-78", date(2026, 1, 6), [])
    return state


def pseudonym_on_the_wire(state: Path, person: str, hours_ago: int) -> str:
    """What the device would publish for ``person``'s hour ``hours_ago`` hours back."""
    settings = Settings(storage={"state_dir": state})
    hour = (datetime.now(timezone.utc) - timedelta(hours=hours_ago)).replace(
        minute=0, second=0, microsecond=0)
    grade = RiskGrade(person, hour, "graded", 4, "Medium risk", 2.0, True, ("sad",), 40)
    (message,) = alerts_for([grade], settings, device_key(state), datetime.now(timezone.utc))
    return RiskAlert.model_validate_json(message.payload).person


def test_reveal_names_the_person_and_is_audited(device: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    last_week = pseudonym_on_the_wire(device, "E-1002", hours_ago=6 * 24)  # still in the ring
    assert main(["reveal", last_week, "--reason", "alert 12ab follow-up by OH"]) == 0
    out = capsys.readouterr().out
    assert "E-1002, consent CONSENT-78 of 2026-01-06" in out
    assert main(["reveal", "0123456789abcdef", "--reason", "a typo, probably"]) == 1
    assert "nobody enrolled" in capsys.readouterr().out
    assert main(["audit", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["operator"], r["pseudonym"], r["reason"], r["found"]) for r in rows] == [
        ("technician", last_week, "alert 12ab follow-up by OH", True),
        ("technician", "0123456789abcdef", "a typo, probably", False)]
    assert main(["audit"]) == 0
    assert "alert 12ab follow-up by OH" in capsys.readouterr().out

    # forgetting the person keeps the audit rows, which never held who it was
    assert main(["forget", "E-1002"]) == 0
    with Store(device) as store:
        audit = store.reveal_audit()
    assert len(audit) == 2 and not any("E-1002" in str(row) for row in audit)
    assert main(["reveal", last_week, "--reason", "after the erasure"]) == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["reveal", "not-hex", "--reason", "because"], "is not a pseudonym"),
    (["reveal", "0123456789abcdef", "--reason", "x"], "--reason: say why"),
    (["reveal", "0123456789abcdef", "--reason", "line\x1b[2Jbreak"], "--reason: say why"),
])
def test_reveal_refuses_bad_input_in_one_line(device: Path, argv: list[str], message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    with Store(device) as store:
        assert store.reveal_audit() == []  # nothing looked up, nothing to audit
