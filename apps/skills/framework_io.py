"""The skill framework as one JSON document: export everything (areas, skills with their scales,
levels, evidence rules and prerequisites, roles with their requirements and paths) and import it
back, atomically.

An import merges by slug (levels by rank): what the document names is created or updated to match
it (a skill's prerequisites, a level's rules, a role's requirements and `leads_to` become the
document's), what it doesn't name is left alone, and nothing is deleted but the rules it replaces.
Every problem is collected with its path (`skills[2].levels[0].rules[1].min_value`) before anything
is kept: one error and the whole import is rolled back (`FrameworkImportError`). See docs/skills.md.
"""

import re
from typing import Any

from django.db import transaction
from django.db.models import Prefetch

from apps.core.evidence_kinds import evidence_kinds
from apps.skills.framework_io_write import (
    FrameworkImportError,
    ImportProblem,
    ImportSummary,
    LevelIn,
    Problems,
    RuleIn,
    write_framework,
)
from apps.skills.models import (
    CareerRole,
    EvidenceRule,
    LevelMatch,
    Skill,
    SkillArea,
    SkillLevel,
)
from apps.skills.skill_evidence import MANUAL

__all__ = [
    "FORMAT",
    "VERSION",
    "FrameworkImportError",
    "ImportProblem",
    "ImportSummary",
    "export_framework",
    "import_framework",
]

FORMAT = "orchcap.skill-framework"
VERSION = 1
_SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
# Top-level keys an import reads; `kinds` (what the exporting installation had registered) is
# informational and ignored.
_TOP = {"format", "version", "areas", "skills", "roles", "kinds"}
_AREA = {"slug", "name", "description"}
_SKILL = {"slug", "area", "name", "description", "prerequisites", "levels"}
_LEVEL = {"rank", "name", "description", "match", "rules"}
_RULE = {"kind", "params", "min_count", "min_value", "period_days"}
_ROLE = {"slug", "name", "description", "requires", "leads_to"}


# --- export -------------------------------------------------------------------------------------


def export_framework() -> dict[str, Any]:
    """The whole framework as a JSON-ready dict, in the framework's order. No database ids: the
    document imports into another installation (or an empty one) as it is."""
    levels = SkillLevel.objects.order_by("rank").prefetch_related("rules")
    skills = (
        Skill.objects.select_related("area")
        .prefetch_related("prerequisites")
        .prefetch_related(Prefetch("levels", levels))
    )
    roles = CareerRole.objects.prefetch_related("requirements__skill", "leads_to")
    return {
        "format": FORMAT,
        "version": VERSION,
        "areas": [
            {"slug": a.slug, "name": a.name, "description": a.description}
            for a in SkillArea.objects.all()
        ],
        "skills": [
            {
                "slug": skill.slug,
                "area": skill.area.slug,
                "name": skill.name,
                "description": skill.description,
                "prerequisites": [p.slug for p in skill.prerequisites.all()],
                "levels": [
                    {
                        "rank": level.rank,
                        "name": level.name,
                        "description": level.description,
                        "match": level.match,
                        "rules": [_rule_out(rule) for rule in level.rules.all()],
                    }
                    for level in skill.levels.all()
                ],
            }
            for skill in skills
        ],
        "roles": [
            {
                "slug": role.slug,
                "name": role.name,
                "description": role.description,
                "requires": {req.skill.slug: req.rank for req in role.requirements.all()},
                "leads_to": [r.slug for r in role.leads_to.all()],
            }
            for role in roles
        ],
        "kinds": [k.key for k in evidence_kinds()],
    }


def _rule_out(rule: EvidenceRule) -> dict[str, Any]:
    return {
        "kind": rule.kind,
        "params": rule.params,
        "min_count": rule.min_count,
        "min_value": rule.min_value,
        "period_days": rule.period_days,
    }


# --- import -------------------------------------------------------------------------------------


def _text(
    obj: dict, key: str, path: str, problems: Problems, *, max_length: int, required: bool = True
) -> str | None:
    value = obj.get(key, None if required else "")
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        problems.add(f"{path}.{key}", "is missing" if value is None else "must be a text")
        return None
    if required and not value.strip():
        problems.add(f"{path}.{key}", "must not be empty")
        return None
    if len(value) > max_length:
        problems.add(f"{path}.{key}", f"is longer than {max_length} characters")
        return None
    return value


def _slug(obj: dict, path: str, problems: Problems) -> str | None:
    slug = _text(obj, "slug", path, problems, max_length=60)
    if slug is not None and not _SLUG.match(slug):
        problems.add(f"{path}.slug", "letters, digits, hyphens and underscores only")
        return None
    return slug


def _object(value: Any, path: str, keys: set[str], problems: Problems) -> dict | None:
    if not isinstance(value, dict):
        problems.add(path, "must be an object")
        return None
    for unknown in sorted(set(value) - keys):
        where = f"{path}.{unknown}" if path else unknown
        problems.add(where, "is not a field of the framework document")
    return value


def _list(obj: dict, key: str, path: str, problems: Problems) -> list:
    value = obj.get(key, [])
    if not isinstance(value, list):
        problems.add(f"{path}.{key}" if path else key, "must be a list")
        return []
    return value


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _slugs_of(items: list, problems: Problems, what: str) -> list[tuple[int, str, dict]]:
    """(index, slug, item) of the items whose slug is valid, each slug once."""
    seen: dict[str, int] = {}
    result = []
    for index, raw in enumerate(items):
        path = f"{what}[{index}]"
        keys = {"areas": _AREA, "skills": _SKILL, "roles": _ROLE}[what]
        item = _object(raw, path, keys, problems)
        if item is None:
            continue
        slug = _slug(item, path, problems)
        if slug is None:
            continue
        if slug in seen:
            problems.add(f"{path}.slug", f"{slug!r} is also {what}[{seen[slug]}]")
            continue
        seen[slug] = index
        result.append((index, slug, item))
    return result


def _rule(raw: Any, path: str, skill_slug: str, problems: Problems) -> RuleIn | None:
    rule = _object(raw, path, _RULE, problems)
    if rule is None:
        return None
    before = len(problems.items)
    kind = rule.get("kind")
    if not isinstance(kind, str) or not kind:
        problems.add(f"{path}.kind", "must be an evidence kind, e.g. cases.decisions_agree")
    params = rule.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        problems.add(f"{path}.params", "must be an object")
    min_count = rule.get("min_count", 1)
    if not _int(min_count) or not 0 <= min_count <= 1_000_000:
        problems.add(f"{path}.min_count", "must be a whole number from 0 to 1,000,000")
    min_value = rule.get("min_value")
    if min_value is not None and (
        isinstance(min_value, bool) or not isinstance(min_value, int | float)
    ):
        problems.add(f"{path}.min_value", "must be a number or null")
    period_days = rule.get("period_days")
    if period_days is not None and not _int(period_days):
        problems.add(f"{path}.period_days", "must be a whole number of days or null")
    if len(problems.items) > before:
        return None
    params = dict(params)
    if kind == MANUAL:
        params["skill"] = skill_slug  # as services.add_rule does: the rule's own skill
    return RuleIn(
        path=path,
        kind=kind,  # type: ignore[arg-type]
        params=params,
        min_count=min_count,
        min_value=float(min_value) if min_value is not None else None,
        period_days=period_days,
    )


def import_framework(*, document: Any) -> ImportSummary:
    """Import `document` (an export_framework() dict) into the framework: areas, skills, levels
    and roles are matched by slug (levels by rank) and created or updated; a level's rules, a
    skill's prerequisites, a role's requirements and paths become the document's. Raises
    FrameworkImportError listing every problem (with its path) and keeps nothing in that case.
    A level is never deleted (people's history refers to it), so a document that gives a skill
    fewer levels than it has is refused."""
    problems = Problems()
    doc = _object(document, "", _TOP, problems) if isinstance(document, dict) else None
    if doc is None:
        raise FrameworkImportError([ImportProblem("", "The framework is a JSON object.")])
    if doc.get("format", FORMAT) != FORMAT:
        problems.add("format", f"must be {FORMAT!r}")
    if doc.get("version", VERSION) != VERSION:
        problems.add("version", f"this orchcap reads version {VERSION}")

    areas = _slugs_of(_list(doc, "areas", "", problems), problems, "areas")
    skills = _slugs_of(_list(doc, "skills", "", problems), problems, "skills")
    roles = _slugs_of(_list(doc, "roles", "", problems), problems, "roles")
    area_slugs = {slug for _, slug, _ in areas} | set(
        SkillArea.objects.values_list("slug", flat=True)
    )
    existing_skills = {s.slug: s for s in Skill.objects.prefetch_related("levels")}
    skill_slugs = {slug for _, slug, _ in skills} | set(existing_skills)
    role_slugs = {slug for _, slug, _ in roles} | set(
        CareerRole.objects.values_list("slug", flat=True)
    )

    clean_areas = []
    for index, slug, item in areas:
        path = f"areas[{index}]"
        name = _text(item, "name", path, problems, max_length=120)
        description = _text(item, "description", path, problems, max_length=10_000, required=False)
        if name is not None and description is not None:
            clean_areas.append((slug, name, description))

    clean_skills = []
    ranks_of: dict[str, set[int]] = {
        slug: {lv.rank for lv in skill.levels.all()} for slug, skill in existing_skills.items()
    }
    for index, slug, item in skills:
        path = f"skills[{index}]"
        name = _text(item, "name", path, problems, max_length=120)
        description = _text(item, "description", path, problems, max_length=10_000, required=False)
        area = item.get("area")
        if not isinstance(area, str) or area not in area_slugs:
            problems.add(
                f"{path}.area", f"{area!r} is not an area of the document or the framework"
            )
        prerequisites = _list(item, "prerequisites", path, problems)
        for n, prerequisite in enumerate(prerequisites):
            if not isinstance(prerequisite, str):
                problems.add(f"{path}.prerequisites[{n}]", "must be a skill's slug")
            elif prerequisite == slug:
                problems.add(f"{path}.prerequisites[{n}]", "a skill can't be its own prerequisite")
            elif prerequisite not in skill_slugs:
                problems.add(
                    f"{path}.prerequisites[{n}]",
                    f"{prerequisite!r} is not a skill of the document or the framework",
                )
        levels = []
        for n, raw in enumerate(_list(item, "levels", path, problems)):
            level_path = f"{path}.levels[{n}]"
            level = _object(raw, level_path, _LEVEL, problems)
            if level is None:
                continue
            rank = level.get("rank", n + 1)
            if rank != n + 1 or not _int(rank):
                problems.add(f"{level_path}.rank", f"must be {n + 1}: levels are ranked 1, 2, 3…")
            level_name = _text(level, "name", level_path, problems, max_length=60)
            level_description = _text(
                level, "description", level_path, problems, max_length=1000, required=False
            )
            match = level.get("match", LevelMatch.ALL)
            if match not in LevelMatch.values:
                problems.add(f"{level_path}.match", f"is {' or '.join(LevelMatch.values)}")
            rules = [
                _rule(rule, f"{level_path}.rules[{r}]", slug, problems)
                for r, rule in enumerate(_list(level, "rules", level_path, problems))
            ]
            if level_name is not None and level_description is not None:
                levels.append(
                    LevelIn(
                        rank=n + 1, name=level_name, description=level_description,
                        match=match, rules=[r for r in rules if r is not None],
                    )
                )  # fmt: skip
        have = ranks_of.get(slug, set())
        if have and max(have) > len(levels):
            problems.add(
                f"{path}.levels",
                f"the framework's {slug} has {max(have)} levels and the document "
                f"{len(levels)}: an import never deletes a level (people's history refers to it)",
            )
        ranks_of[slug] = set(range(1, len(levels) + 1)) | have
        if name is not None and description is not None:
            prerequisites = [p for p in prerequisites if isinstance(p, str)]
            clean_skills.append((slug, area, name, description, prerequisites, levels))

    clean_roles = []
    for index, slug, item in roles:
        path = f"roles[{index}]"
        name = _text(item, "name", path, problems, max_length=120)
        description = _text(item, "description", path, problems, max_length=10_000, required=False)
        requires = item.get("requires", {})
        if not isinstance(requires, dict):
            problems.add(f"{path}.requires", "must be an object {skill slug: level rank}")
            requires = {}
        for skill_slug, rank in requires.items():
            if skill_slug not in skill_slugs:
                problems.add(
                    f"{path}.requires.{skill_slug}",
                    "is not a skill of the document or the framework",
                )
            elif not _int(rank) or rank not in ranks_of.get(skill_slug, set()):
                problems.add(f"{path}.requires.{skill_slug}", f"{skill_slug} has no level {rank!r}")
        leads_to = _list(item, "leads_to", path, problems)
        for n, target in enumerate(leads_to):
            if not isinstance(target, str):
                problems.add(f"{path}.leads_to[{n}]", "must be a role's slug")
            elif target == slug:
                problems.add(f"{path}.leads_to[{n}]", "a role can't lead to itself")
            elif target not in role_slugs:
                problems.add(
                    f"{path}.leads_to[{n}]",
                    f"{target!r} is not a role of the document or the framework",
                )
        if name is not None and description is not None:
            requires = {k: v for k, v in requires.items() if _int(v)}
            leads_to = [t for t in leads_to if isinstance(t, str)]
            clean_roles.append((slug, name, description, requires, leads_to))

    summary = ImportSummary()
    with transaction.atomic():
        write_framework(clean_areas, clean_skills, clean_roles, problems, summary)
        if problems.items:
            # Raised inside the block: the writes are rolled back, nothing half-imported.
            raise FrameworkImportError(problems.items)
    return summary
