"""API schemas of the team skills matrix and of a framework import's answer (the framework
document itself is FrameworkOut in schemas.py)."""

from datetime import datetime

from ninja import Field, Schema

from apps.skills.schemas import LevelOut


class ImportProblemOut(Schema):
    path: str = Field(description="Where in the document, e.g. skills[2].levels[0].rules[1].kind")
    message: str


class ImportErrorOut(Schema):
    detail: str
    errors: list[ImportProblemOut]


class ImportOut(Schema):
    detail: str
    created: dict[str, int] = Field(description="{areas, skills, levels, rules, roles: how many}")
    updated: dict[str, int] = Field(description="{areas, skills, levels, roles: how many}")
    rules_removed: int = Field(description="Rules of levels whose rules the document changed.")


class MatrixEvidenceOut(Schema):
    description: str
    count: int
    value: float | None
    met: bool


class MatrixCellOut(Schema):
    skill: str
    level: LevelOut | None
    since: datetime | None
    evidence: list[MatrixEvidenceOut] = Field(description="The held level's rules, as measured.")


class MatrixPersonOut(Schema):
    username: str
    name: str
    skills: list[MatrixCellOut]


class MatrixSkillOut(Schema):
    slug: str
    name: str
    area: str
    levels: list[LevelOut]


class SkillSpofOut(Schema):
    skill: str
    holder: str
    level: LevelOut


class ProcessSpofOut(Schema):
    process: str
    name: str
    expert: str
    decisions: int
    last_at: datetime


class SpofsOut(Schema):
    skills: list[SkillSpofOut] = Field(description="Held at min_rank or above by one person only.")
    processes: list[ProcessSpofOut] = Field(
        description="Decided by one person over the last 30 days."
    )
    uncovered: list[str] = Field(description="Skills nobody holds at min_rank.")


class MatrixPlanOut(Schema):
    id: int
    person: str
    target_role: str
    state: str
    waits_for_agreement: bool
    review_requested: bool


class TeamSkillsOut(Schema):
    team: str
    min_rank: int
    skills: list[MatrixSkillOut]
    people: list[MatrixPersonOut]
    single_points_of_failure: SpofsOut
    plans: list[MatrixPlanOut]
