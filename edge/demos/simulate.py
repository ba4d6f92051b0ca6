"""A synthetic cohort driven through the real aggregation, store and grading code.

Each person has a baseline expression mix, a daily rhythm (brighter mornings, flatter late
afternoons), hour-to-hour jitter and per-face noise; faces arrive during office hours on
weekdays. Episodes of known kind and length are injected after the first week, and the
report says which were found, how long the first alert took, and how many hours were
flagged outside any episode. Deterministic for a seed; a simulated clock replays weeks in
seconds.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from edge.analytics.risk import RiskAnalytics
from edge.core.clock import SimulatedClock
from edge.core.emotions import BASIC_EMOTIONS
from edge.core.records import HourlyVector, RiskGrade
from edge.settings import AnalyticsSettings
from edge.store import Store
from edge.vision.emotion import emotion_vectors

HOUR = timedelta(hours=1)
INDEX = {name: i for i, name in enumerate(BASIC_EMOTIONS)}


@dataclass(frozen=True)
class EpisodeKind:
    name: str
    hours: int
    shifts: dict[str, tuple[float, ...]]  # logit shift per emotion, per episode hour


EPISODE_KINDS = (
    EpisodeKind("sadness rise over 3 hours", 3, {"sad": (1.5, 2.5, 3.5)}),
    EpisodeKind("flattened positive emotion for a day", 10,
                {"happy": (-2.5,) * 10, "surprise": (-2.0,) * 10}),
    EpisodeKind("anger burst for 1 hour", 1, {"angry": (3.5,)}),
    EpisodeKind("fear for 2 hours", 2, {"fear": (3.0, 3.0)}),
)


@dataclass(frozen=True)
class Episode:
    person_id: str
    kind: EpisodeKind
    start: datetime  # UTC start of its first hour

    def hours(self) -> list[datetime]:
        return [self.start + i * HOUR for i in range(self.kind.hours)]


@dataclass
class SimulationConfig:
    people: int = 10
    weeks: int = 4
    seed: int = 7
    timezone: str = "UTC"
    office_hours: tuple[int, int] = (8, 18)  # local, start inclusive, end exclusive
    faces_per_hour: tuple[int, int] = (20, 60)
    start: datetime = datetime(2026, 1, 5)  # a Monday, local midnight


@dataclass
class PersonReport:
    person_id: str
    episodes: int = 0
    found: int = 0
    delays_h: list[int] = field(default_factory=list)
    flagged_outside: int = 0
    graded_hours: int = 0
    insufficient_hours: int = 0


@dataclass
class SimulationReport:
    people: list[PersonReport]
    episodes: list[Episode]
    grades: list[RiskGrade]
    settings: AnalyticsSettings
    state_dir: Path | None
    vectors: dict[str, tuple[list[datetime], np.ndarray]]  # every hour closed, per person

    @property
    def found(self) -> int:
        return sum(p.found for p in self.people)

    @property
    def flagged_outside(self) -> int:
        return sum(p.flagged_outside for p in self.people)

    @property
    def graded_hours(self) -> int:
        return sum(p.graded_hours for p in self.people)

    @property
    def delays(self) -> list[int]:
        return [d for p in self.people for d in p.delays_h]


class Cohort:
    """Generates faces; all randomness comes from one seeded generator."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.ids = [f"sim-{i + 1:02d}" for i in range(config.people)]
        mix = np.array([1.2, 0.4, 0.3, 0.1, 0.2, 0.4, 2.0])  # happy .. neutral
        self.baselines = {p: np.log(self.rng.dirichlet(mix * 8)) for p in self.ids}
        self.rhythm = {p: self.rng.uniform(0.2, 0.6) for p in self.ids}

    def faces(self, person_id: str, local_hour: int, shift: dict[str, float],
              count: int) -> np.ndarray:
        logits = self.baselines[person_id].copy()
        day_phase = (local_hour - self.config.office_hours[0]) / 10.0
        logits[INDEX["happy"]] += self.rhythm[person_id] * np.cos(np.pi * day_phase)
        logits[INDEX["neutral"]] += 0.3 * day_phase
        for emotion, amount in shift.items():
            logits[INDEX[emotion]] += amount
        logits = logits + self.rng.normal(0, 0.15, 7)            # this hour's mood
        per_face = logits + self.rng.normal(0, 0.8, (count, 7))   # each face differs
        probabilities = np.exp(per_face - per_face.max(axis=1, keepdims=True))
        return emotion_vectors(probabilities / probabilities.sum(axis=1, keepdims=True))


def schedule_episodes(cohort: Cohort, zone: ZoneInfo) -> list[Episode]:
    """0-2 episodes per person, each inside one office day of weeks 2 to the last."""
    config, rng = cohort.config, cohort.rng
    first, last = config.office_hours
    episodes = []
    for person_id in cohort.ids:
        days = sorted(rng.choice(np.arange(7, config.weeks * 7), size=2, replace=False))
        for day in days[: int(rng.integers(0, 3))]:
            date = config.start + timedelta(days=int(day))
            while date.weekday() >= 5:
                date += timedelta(days=1)
            kind = EPISODE_KINDS[int(rng.integers(len(EPISODE_KINDS)))]
            hour = first if kind.hours >= last - first else int(
                rng.integers(first, last - kind.hours + 1))
            local = date.replace(hour=hour, tzinfo=zone)
            if date < config.start + timedelta(weeks=config.weeks):
                episodes.append(Episode(person_id, kind, local.astimezone(timezone.utc)))
    return episodes


def run_simulation(config: SimulationConfig, analytics: AnalyticsSettings,
                   state_dir: Path | None = None,
                   progress: Callable[[str], None] | None = None) -> SimulationReport:
    zone = ZoneInfo(config.timezone)
    cohort = Cohort(config)
    episodes = schedule_episodes(cohort, zone)
    shift_at: dict[tuple[str, datetime], dict[str, float]] = {}
    for episode in episodes:
        for i, hour in enumerate(episode.hours()):
            shift_at[(episode.person_id, hour)] = {e: s[i] for e, s in episode.kind.shifts.items()}
    start = config.start.replace(tzinfo=zone).astimezone(timezone.utc)
    clock = SimulatedClock(start)
    temporary = None if state_dir else tempfile.TemporaryDirectory(prefix="edge-sim-")
    folder = state_dir or Path(temporary.name)  # type: ignore[union-attr]
    grades: list[RiskGrade] = []
    closed: dict[str, list[HourlyVector]] = {p: [] for p in cohort.ids}
    try:
        with Store(folder) as store:
            for person_id in cohort.ids:
                store.enroll(person_id, "SIMULATED", config.start.date(), [])
            engine = RiskAnalytics(store, analytics, zone, clock)
            total_hours = config.weeks * 7 * 24
            for index in range(total_hours):
                hour = start + index * HOUR
                local = hour.astimezone(zone)
                if local.weekday() < 5 and config.office_hours[0] <= local.hour < \
                        config.office_hours[1]:
                    batch = []
                    for person_id in cohort.ids:
                        if cohort.rng.random() < 0.05:  # away for this hour
                            continue
                        count = int(cohort.rng.integers(*config.faces_per_hour))
                        faces = cohort.faces(person_id, local.hour,
                                             shift_at.get((person_id, hour), {}), count)
                        offsets = np.sort(cohort.rng.uniform(0, 3600, count))
                        batch += [(person_id, v, hour + timedelta(seconds=float(s)))
                                  for v, s in zip(faces, offsets)]
                    grades += engine.observe(batch)
                    for item in engine.last_closed:
                        closed[item.person_id].append(item)
                clock.set(hour + HOUR)
                grades += engine.tick()
                for item in engine.last_closed:
                    closed[item.person_id].append(item)
                if progress and (index + 1) % (24 * 7) == 0:
                    progress(f"week {(index + 1) // 168} of {config.weeks} simulated")
    finally:
        if temporary is not None:
            temporary.cleanup()
    vectors = {p: ([h.hour_start for h in hours],
                   np.array([h.vector for h in hours]).reshape(-1, 10))
               for p, hours in closed.items()}
    return SimulationReport(_score(cohort.ids, episodes, grades), episodes, grades, analytics,
                            state_dir, vectors)


def _score(ids: list[str], episodes: list[Episode], grades: list[RiskGrade]
           ) -> list[PersonReport]:
    reports = {p: PersonReport(p) for p in ids}
    inside = {(e.person_id, h) for e in episodes for h in e.hours()}
    for grade in grades:
        report = reports[grade.person_id]
        if grade.status == "insufficient_history":
            report.insufficient_hours += 1
            continue
        report.graded_hours += 1
        if grade.level > 0 and (grade.person_id, grade.hour_start) not in inside:
            report.flagged_outside += 1
    alerts = {(g.person_id, g.hour_start) for g in grades if g.level > 0}
    for episode in episodes:
        report = reports[episode.person_id]
        report.episodes += 1
        hits = [i for i, h in enumerate(episode.hours()) if (episode.person_id, h) in alerts]
        if hits:
            report.found += 1
            report.delays_h.append(hits[0] + 1)  # an hour is graded when it closes
    return list(reports.values())


def format_report(report: SimulationReport) -> str:
    s = report.settings
    lines = [f"LOF threshold {s.lof_threshold}, k {s.lof_k}, min history {s.min_history_hours} h,"
             f" LOF gate {'on' if s.require_lof_anomaly else 'off'}",
             f"{'person':8} {'episodes':>8} {'found':>5} {'first alert (h)':>16} "
             f"{'flagged outside':>15} {'graded hours':>12}"]
    for p in report.people:
        delays = ",".join(str(d) for d in p.delays_h) or "-"
        lines.append(f"{p.person_id:8} {p.episodes:>8} {p.found:>5} {delays:>16} "
                     f"{p.flagged_outside:>15} {p.graded_hours:>12}")
    episodes = len(report.episodes)
    delays = report.delays
    lines.append(f"overall: {report.found}/{episodes} episodes found; "
                 f"{report.flagged_outside} of {report.graded_hours} graded hours flagged "
                 f"outside episodes ({report.flagged_outside / max(report.graded_hours, 1):.1%});"
                 f" time to first alert median "
                 f"{np.median(delays) if delays else float('nan'):.1f} h, max "
                 f"{max(delays) if delays else '-'} h")
    by_kind: dict[str, list[int]] = {}
    found_keys = {(e.person_id, e.start) for e in report.episodes
                  if _episode_found(e, report.grades)}
    for e in report.episodes:
        by_kind.setdefault(e.kind.name, []).append(int((e.person_id, e.start) in found_keys))
    alerts = {(g.person_id, g.hour_start) for g in report.grades if g.level > 0}
    for kind, hits in by_kind.items():
        of_kind = [e for e in report.episodes if e.kind.name == kind]
        hours = [(e.person_id, h) for e in of_kind for h in e.hours()]
        flagged = sum(key in alerts for key in hours)
        lines.append(f"  {kind}: {sum(hits)}/{len(hits)} found, {flagged}/{len(hours)} of "
                     "their hours flagged")
    return "\n".join(lines)


def _episode_found(episode: Episode, grades: list[RiskGrade]) -> bool:
    hours = set(episode.hours())
    return any(g.person_id == episode.person_id and g.hour_start in hours and g.level > 0
               for g in grades)


def plot_person(report: SimulationReport, person_id: str, path: Path) -> Path:
    """PNG timeline of one person's hourly components, with episodes and risk levels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edge.core.emotions import COMPONENTS

    hours, matrix = report.vectors[person_id]
    index = np.arange(len(hours))  # office hours only, side by side: no empty nights
    position = {h: i for i, h in enumerate(hours)}
    figure, axes = plt.subplots(3, 1, figsize=(14, 9), sharex=True,
                                gridspec_kw={"height_ratios": [3, 2, 1.2]})
    for column in range(7):
        axes[0].plot(index, matrix[:, column], lw=1, label=COMPONENTS[column])
    for column in range(7, 10):
        axes[1].plot(index, matrix[:, column], lw=1.3, label=COMPONENTS[column])
    grades = [g for g in report.grades if g.person_id == person_id and g.hour_start in position]
    lof = [(position[g.hour_start], g.lof_score) for g in grades if g.lof_score is not None]
    if lof:
        axes[2].plot(*zip(*lof), color="black", lw=0.8, label="LOF score")
    axes[2].axhline(report.settings.lof_threshold, color="red", ls="--", lw=0.8,
                    label=f"LOF threshold {report.settings.lof_threshold}")
    colours = {"Low risk": "gold", "Medium risk": "orange", "High risk": "red"}
    for grade in grades:
        if grade.level > 0:
            for axis in axes:
                axis.axvline(position[grade.hour_start], color=colours[grade.label], lw=2,
                             alpha=0.6)
    for episode in report.episodes:
        if episode.person_id != person_id:
            continue
        inside = [position[h] for h in episode.hours() if h in position]
        if inside:
            for axis in axes:
                axis.axvspan(min(inside) - 0.5, max(inside) + 0.5, color="grey", alpha=0.2)
            axes[0].text(min(inside), axes[0].get_ylim()[1] * 0.95, episode.kind.name,
                         fontsize=8, va="top")
    insufficient = [position[g.hour_start] for g in grades if g.status != "graded"]
    if insufficient:
        axes[2].axvspan(min(insufficient), max(insufficient), color="lightblue", alpha=0.4,
                        label="insufficient history")
    axes[0].set_title(f"{person_id}: hourly emotion vector (office hours side by side); grey = "
                      "injected episode, coloured lines = risk level (gold Low, orange Medium, "
                      "red High)", fontsize=10)
    axes[0].set_ylabel("probability")
    axes[1].set_ylabel("group sum")
    axes[2].set_ylabel("LOF")
    axes[2].set_xlabel("office hour index")
    for axis in axes:
        axis.legend(loc="upper left", fontsize=7, ncol=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
