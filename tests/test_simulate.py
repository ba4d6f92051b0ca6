from __future__ import annotations

from pathlib import Path

import pytest

from edge.cli import main
from edge.demos.simulate import SimulationConfig, format_report, plot_person, run_simulation
from edge.settings import AnalyticsSettings


@pytest.fixture(scope="module")
def report():
    return run_simulation(SimulationConfig(), AnalyticsSettings())


def test_default_cohort_finds_episodes_with_few_false_hours(report) -> None:
    assert len(report.episodes) >= 5
    assert report.found >= len(report.episodes) - 1
    assert report.flagged_outside / report.graded_hours < 0.01
    assert max(report.delays) <= 3


def test_deterministic_for_a_seed(report) -> None:
    again = run_simulation(SimulationConfig(), AnalyticsSettings())
    assert format_report(again) == format_report(report)
    other = run_simulation(SimulationConfig(seed=8, weeks=2, people=3), AnalyticsSettings())
    assert format_report(other) != format_report(report)


def test_higher_lof_threshold_flags_no_more_hours(report) -> None:
    strict = run_simulation(SimulationConfig(), AnalyticsSettings(lof_threshold=2.0))
    assert strict.flagged_outside <= report.flagged_outside
    assert sum(g.level > 0 for g in strict.grades) <= sum(g.level > 0 for g in report.grades)


def test_timeline_png(report, tmp_path: Path) -> None:
    person = next(e.person_id for e in report.episodes)
    path = plot_person(report, person, tmp_path / "timeline.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "t.png"
    assert main(["simulate", "--people", "3", "--weeks", "2", "--png", str(png),
                 "--state-dir", str(tmp_path / "state")]) == 0
    out = capsys.readouterr().out
    assert "overall:" in out and png.exists() and (tmp_path / "state").is_dir()
    assert main(["simulate", "--weeks", "1"]) == 2
    assert "--weeks >= 2" in capsys.readouterr().err
