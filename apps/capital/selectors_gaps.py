"""Reads for the assessment's gaps and history: the questions the figures can't answer (with the
manager's current answers), the recorded versions, and what changed between two of them."""

from dataclasses import dataclass
from typing import Any

from django.http import Http404

from apps.capital.models import Assessment, AssessmentAnswer
from apps.capital.selectors_assessment import ACTIVITY_DAYS
from apps.people.models import Team

# --- gaps as questions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    key: str
    pillar: str
    text: str
    answer: str = ""


def gap_questions(*, team: Team, figures: dict[str, Any]) -> list[Question]:
    """What the figures can't say, as questions for the manager (with their current answers)."""
    infra, data, people = figures["infrastructure"], figures["data"], figures["people"]
    processes = figures["process"]["processes"]
    found: list[tuple[str, str, str]] = []
    if not infra["assets_listed"]:
        found.append(
            (
                "infrastructure.assets",
                "infrastructure",
                "Which machines does the team have (servers, workstations, edge boxes, GPU "
                "hosts), enrolled or not? List them below so the fabric's share has a "
                "denominator.",
            )
        )
    elif infra["assets_not_enrolled"]:
        found.append(
            (
                "infrastructure.not_enrolled",
                "infrastructure",
                f"{infra['assets_not_enrolled']} listed machine(s) are not enrolled: what "
                "keeps them out of the fabric, and who could enrol them?",
            )
        )
    if not infra["nodes_enrolled"]:
        found.append(
            (
                "infrastructure.no_node",
                "infrastructure",
                "No machine of the team is enrolled in the fabric: which one could be first, "
                "and when?",
            )
        )
    for row in processes:
        if row["minutes_measured"] is None:
            found.append(
                (
                    f"process.minutes.{row['slug']}",
                    "process",
                    f"{row['name']}: no review time is measured yet; is the configured "
                    f"{row['minutes_configured']} minutes per case right?",
                )
            )
        elif row["minutes_configured"] and (
            abs(row["minutes_measured"] - row["minutes_configured"])
            > 0.5 * row["minutes_configured"]
        ):
            found.append(
                (
                    f"process.minutes.{row['slug']}",
                    "process",
                    f"{row['name']}: experts take {row['minutes_measured']} minutes per case, "
                    f"the estimate says {row['minutes_configured']}: which one should value be "
                    "measured against?",
                )
            )
        if row["owner"] is None:
            found.append(
                (
                    f"process.owner.{row['slug']}",
                    "process",
                    f"Who owns {row['name']}? (Set the owner on the first-battle page.)",
                )
            )
    if not figures["process"]["named"]:
        found.append(
            (
                "process.named",
                "process",
                "Which other processes raise exceptions that people handle by hand? Name them "
                "below, even before they are connected.",
            )
        )
    if not data["listed"]:
        found.append(
            (
                "data.sources",
                "data",
                "Where does the team's data live (systems, sites, formats)? List the sources "
                "below.",
            )
        )
    unreachable = [s["name"] for s in data["sources"] if not s["reachable"]]
    if unreachable:
        found.append(
            (
                "data.unreachable",
                "data",
                f"No enrolled node hosts {', '.join(unreachable)}: how could orchestrations "
                "reach them?",
            )
        )
    idle = [e["username"] for e in people["experts"] if e["is_member"] and not e["decisions_30d"]]
    if idle:
        found.append(
            (
                "people.idle",
                "people",
                f"{', '.join(idle)} decided nothing in the last {ACTIVITY_DAYS} days: are they "
                "still reviewing, and what do they know that no one else does?",
            )
        )
    found.extend(
        (
            f"people.agreement.{row['process']}",
            "people",
            f"{row['name']}: no case has two experts' labels, so agreement is unknown: should a "
            "share of cases get a second look?",
        )
        for row in people["agreement"]
        if not row["cases_compared"]
    )
    answers = dict(AssessmentAnswer.objects.filter(team=team).values_list("question", "answer"))
    return [Question(key, pillar, text, answers.get(key, "")) for key, pillar, text in found]


# --- recorded assessments and what changed ------------------------------------------------------


def assessments_of(*, team: Team) -> list[Assessment]:
    return list(Assessment.objects.filter(team=team).select_related("recorded_by"))


def assessment_version(*, team: Team, version: int) -> Assessment:
    assessment = (
        Assessment.objects.filter(team=team, version=version).select_related("recorded_by").first()
    )
    if assessment is None:
        raise Http404("No such assessment")
    return assessment


# Lists of rows are compared row by row, matched on the first of these keys they have.
_ROW_KEYS = ("slug", "username", "name", "process")
# What a diff line calls each figure.
_SKIP = {"measured_at"}


def _flatten(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in _SKIP:
                _flatten(item, f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for index, item in enumerate(value):
            key = next((str(item[k]) for k in _ROW_KEYS if k in item), None)
            if key is None and "class" in item and "state" in item:
                key = f"{item['class']}/{item['state']}"
            if key is None and "label" in item:
                key = f"{item.get('process', '')}/{item['label']}"
            _flatten(item, f"{path}[{key if key is not None else index}]", out)
    else:
        out[path] = value


def diff_assessments(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """What changed between two assessments' figures (or two answer sets): one row per figure
    path that was added, removed or changed, in path order."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    _flatten(old, "", before)
    _flatten(new, "", after)
    rows = []
    for path in sorted(before.keys() | after.keys()):
        if path not in before:
            rows.append({"path": path, "change": "added", "before": None, "after": after[path]})
        elif path not in after:
            rows.append({"path": path, "change": "removed", "before": before[path], "after": None})
        elif before[path] != after[path]:
            rows.append(
                {"path": path, "change": "changed", "before": before[path], "after": after[path]}
            )
    return rows


def answers_of(assessment: Assessment) -> dict[str, Any]:
    return {q["key"]: {"question": q["text"], "answer": q["answer"]} for q in assessment.questions}
