from datetime import datetime
from typing import Any

from ninja import Field, Schema


class ErrorOut(Schema):
    detail: str


class RefOut(Schema):
    label: str
    url: str


class EvidenceOut(Schema):
    rule_id: int
    level_rank: int
    kind: str
    description: str = Field(description="The rule in words: what counts, thresholds, period.")
    count: int
    value: float | None
    met: bool
    missing: str = Field(description="What is left to do to meet it ('' when met).")
    since: datetime | None
    until: datetime | None
    refs: list[RefOut] = Field(description="Links to (up to 10 of) the rows counted.")


class LevelOut(Schema):
    rank: int
    name: str


class PersonSkillOut(Schema):
    skill: str
    name: str
    area: str
    level: LevelOut | None
    since: datetime | None
    next_level: LevelOut | None
    missing: list[str] = Field(description="For the next level: each rule not met yet.")
    evidence: list[EvidenceOut]


class PersonSkillsOut(Schema):
    username: str
    skills: list[PersonSkillOut]


class PlanEventOut(Schema):
    from_state: str
    to_state: str
    actor: str | None
    note: str
    at: datetime


class PlanOut(Schema):
    id: int
    person: str
    target_role: str
    state: str
    proposed_by: str | None
    agreed_by: str | None
    note: str
    created_at: datetime
    events: list[PlanEventOut]


class PlanIn(Schema):
    target_role: str = Field(description="The role's slug (GET /skills/framework lists them).")
    note: str = Field("", max_length=2000)


class TransitionIn(Schema):
    to: str = Field(description="The next state: agreed, active or done.")
    note: str = Field("", max_length=1000)


class AreaOut(Schema):
    slug: str
    name: str
    description: str


class RuleOut(Schema):
    kind: str
    params: dict[str, Any]
    min_count: int
    min_value: float | None
    period_days: int | None


class SkillLevelOut(Schema):
    rank: int
    name: str
    description: str
    match: str
    rules: list[RuleOut]


class SkillOut(Schema):
    slug: str
    name: str
    area: str
    description: str
    prerequisites: list[str]
    levels: list[SkillLevelOut]


class RoleOut(Schema):
    slug: str
    name: str
    description: str
    requires: dict[str, int] = Field(description="{skill slug: level rank}")
    leads_to: list[str]


class FrameworkOut(Schema):
    """The framework as a document POST /skills/framework imports (apps/skills/framework_io.py)."""

    format: str
    version: int
    areas: list[AreaOut]
    skills: list[SkillOut]
    roles: list[RoleOut]
    kinds: list[str] = Field(description="The evidence kinds registered here (not imported).")
