"""The writes of a framework import (apps/skills/framework_io.py), in dependency order, and the
types both share: the problems found, the summary, the cleaned rules and levels."""

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from apps.core.evidence_kinds import evidence_kind
from apps.skills import services
from apps.skills.models import (
    CareerRole,
    EvidenceRule,
    RoleRequirement,
    Skill,
    SkillArea,
    SkillLevel,
)


@dataclass(frozen=True)
class ImportProblem:
    path: str  # where in the document: "skills[2].levels[0].rules[1].kind" ("" the whole of it)
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class FrameworkImportError(ValidationError):
    """The document can't be imported; `problems` lists every one found. Nothing was kept."""

    def __init__(self, problems: list[ImportProblem]) -> None:
        self.problems = problems
        super().__init__([str(p) for p in problems])


@dataclass
class ImportSummary:
    created: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("areas", "skills", "levels", "rules", "roles"), 0)
    )
    updated: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("areas", "skills", "levels", "roles"), 0)
    )
    rules_removed: int = 0  # rules of a level whose rules the document changed

    def __str__(self) -> str:
        made = ", ".join(f"{n} {what}" for what, n in self.created.items() if n) or "nothing"
        changed = ", ".join(f"{n} {what}" for what, n in self.updated.items() if n) or "nothing"
        removed = f"; {self.rules_removed} rules replaced" if self.rules_removed else ""
        return f"Framework imported: created {made}; updated {changed}{removed}."


class Problems:
    def __init__(self) -> None:
        self.items: list[ImportProblem] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(ImportProblem(path, message))


@dataclass
class RuleIn:
    path: str
    kind: str
    params: dict[str, Any]
    min_count: int
    min_value: float | None
    period_days: int | None

    def same_as(self, rule: EvidenceRule) -> bool:
        return (rule.kind, rule.params, rule.min_count, rule.min_value, rule.period_days) == (
            self.kind,
            self.params,
            self.min_count,
            self.min_value,
            self.period_days,
        )


@dataclass
class LevelIn:
    rank: int
    name: str
    description: str
    match: str
    rules: list[RuleIn]


def write_framework(
    areas: list, skills: list, roles: list, problems: Problems, summary: ImportSummary
) -> None:
    """The writes, in dependency order. Rule problems only the evidence kind can see (an unknown
    kind, a parameter it doesn't take, a process that doesn't exist, a figure it doesn't have)
    come from services.add_rule, which raises before it writes, and are collected."""
    by_slug: dict[str, SkillArea] = {a.slug: a for a in SkillArea.objects.all()}
    for position, (slug, name, description) in enumerate(areas):
        area = by_slug.get(slug)
        if area is None:
            by_slug[slug] = SkillArea.objects.create(
                slug=slug, name=name, description=description, position=position
            )
            summary.created["areas"] += 1
        elif (area.name, area.description, area.position) != (name, description, position):
            area.name, area.description, area.position = name, description, position
            area.save(update_fields=["name", "description", "position"])
            summary.updated["areas"] += 1

    skills_by_slug = {s.slug: s for s in Skill.objects.all()}
    written: list[tuple[Skill, list]] = []
    for position, (slug, area_slug, name, description, prerequisites, levels) in enumerate(skills):
        area = by_slug.get(area_slug)
        if area is None:
            continue  # reported above
        skill = skills_by_slug.get(slug)
        values = {"area": area, "name": name, "description": description, "position": position}
        if skill is None:
            skill = Skill.objects.create(slug=slug, **values)
            skills_by_slug[slug] = skill
            summary.created["skills"] += 1
        elif any(getattr(skill, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(skill, key, value)
            skill.save(update_fields=list(values))
            summary.updated["skills"] += 1
        _write_levels(skill, levels, problems, summary)
        written.append((skill, prerequisites))
    for skill, prerequisites in written:
        wanted = [skills_by_slug[p] for p in prerequisites if p in skills_by_slug]
        if {p.pk for p in skill.prerequisites.all()} != {p.pk for p in wanted}:
            skill.prerequisites.set(wanted)

    roles_by_slug = {r.slug: r for r in CareerRole.objects.all()}
    for position, (slug, name, description, _, _) in enumerate(roles):
        role = roles_by_slug.get(slug)
        if role is None:
            roles_by_slug[slug] = CareerRole.objects.create(
                slug=slug, name=name, description=description, position=position
            )
            summary.created["roles"] += 1
        elif (role.name, role.description, role.position) != (name, description, position):
            role.name, role.description, role.position = name, description, position
            role.save(update_fields=["name", "description", "position"])
            summary.updated["roles"] += 1
    for slug, _, _, requires, leads_to in roles:
        role = roles_by_slug[slug]
        wanted = {skills_by_slug[s].pk: rank for s, rank in requires.items() if s in skills_by_slug}
        have = dict(role.requirements.values_list("skill_id", "rank"))
        if have != wanted:
            role.requirements.exclude(skill_id__in=wanted).delete()
            for skill_id, rank in wanted.items():
                RoleRequirement.objects.update_or_create(
                    role=role, skill_id=skill_id, defaults={"rank": rank}
                )
        targets = [roles_by_slug[t] for t in leads_to if t in roles_by_slug]
        if {r.pk for r in role.leads_to.all()} != {r.pk for r in targets}:
            role.leads_to.set(targets)


def _write_levels(
    skill: Skill, levels: list[LevelIn], problems: Problems, summary: ImportSummary
) -> None:
    existing = {level.rank: level for level in skill.levels.prefetch_related("rules")}
    for wanted in levels:
        level = existing.get(wanted.rank)
        values = {"name": wanted.name, "description": wanted.description, "match": wanted.match}
        if level is None:
            level = SkillLevel.objects.create(skill=skill, rank=wanted.rank, **values)
            summary.created["levels"] += 1
            rules: list[EvidenceRule] = []
        else:
            if any(getattr(level, k) != v for k, v in values.items()):
                for key, value in values.items():
                    setattr(level, key, value)
                level.save(update_fields=list(values))
                summary.updated["levels"] += 1
            rules = list(level.rules.all())
        # The same rules (compared after the kind cleans them) stay, with their evidence; any
        # difference replaces the level's rules, measured again at the next refresh.
        if len(rules) == len(wanted.rules) and all(
            new.same_as(old) for new, old in zip(_cleaned(wanted.rules), rules, strict=True)
        ):
            continue
        if rules:
            EvidenceRule.objects.filter(pk__in=[r.pk for r in rules]).delete()
            summary.rules_removed += len(rules)
        for rule in wanted.rules:
            try:
                services.add_rule(
                    level=level, kind=rule.kind, params=rule.params, min_count=rule.min_count,
                    min_value=rule.min_value, period_days=rule.period_days,
                )  # fmt: skip
            except ValidationError as exc:
                problems.add(rule.path, " ".join(exc.messages))
            else:
                summary.created["rules"] += 1


def _cleaned(rules: list[RuleIn]) -> list[RuleIn]:
    """`rules` with their parameters as the kind stores them (defaults filled in); a rule the
    kind refuses stays as it is (it differs, and add_rule reports it)."""
    result = []
    for rule in rules:
        kind = evidence_kind(rule.kind)
        params = rule.params
        if kind is not None:
            try:
                params = kind.clean_params(rule.params)
            except ValidationError:
                pass
        result.append(
            RuleIn(rule.path, rule.kind, params, rule.min_count, rule.min_value, rule.period_days)
        )
    return result
