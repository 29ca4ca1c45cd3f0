from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils.text import slugify

from apps.cases.models import Case, CaseStatus, Process, ProcessSchemaVersion
from apps.cases.schema import clean_priority_field, clean_schema, priority_of
from apps.core.db import lock_in_order
from apps.people.models import Team


@transaction.atomic
def create_process(
    *,
    team: Team,
    name: str,
    slug: str = "",
    description: str = "",
    fields: object,
    decisions: object,
    minutes_per_case: float = 5,
    overlap: int = 1,
    priority_field: str = "",
    priority_descending: bool = True,
    created_by: AbstractUser | None = None,
    is_synthetic: bool = False,
) -> Process:
    """Create a process with its first schema version. Raises SchemaInvalid listing every problem
    of the schema, or ValidationError naming the bad setting."""
    specs, options = clean_schema(fields=fields, decisions=decisions, priority_field=priority_field)
    slug = slug or slugify(name)[:60]
    if not (1 <= int(overlap) <= 10):
        raise ValidationError("overlap must be between 1 and 10")
    if float(minutes_per_case) < 0:
        raise ValidationError("minutes_per_case must not be negative")
    if Process.objects.filter(slug=slug).exists():
        raise ValidationError(f"a process with slug {slug!r} already exists")
    if Process.objects.filter(team=team, name__iexact=name).exists():
        raise ValidationError(f"{team.name} already has a process named {name!r}")
    process = Process(
        team=team,
        name=name,
        slug=slug,
        description=description,
        minutes_per_case=minutes_per_case,
        overlap=overlap,
        priority_field=priority_field,
        priority_descending=priority_descending,
        is_synthetic=is_synthetic,
    )
    process.full_clean(exclude=["schema"])
    process.save()
    process.schema = ProcessSchemaVersion.objects.create(
        process=process, version=1, fields=specs, decisions=options, created_by=created_by
    )
    process.save(update_fields=["schema"])
    return process


@transaction.atomic
def update_process_schema(
    *,
    process: Process,
    fields: object,
    decisions: object,
    changed_by: AbstractUser | None,
    priority_field: str | None = None,
) -> ProcessSchemaVersion:
    """A new schema version; stored cases keep theirs, so nothing already captured is invalidated.

    `priority_field` is the one that will hold after this change when the caller changes it in the
    same transaction (a field renamed together with the priority); by default the current one.
    Raises SchemaInvalid listing every problem."""
    specs, options = clean_schema(
        fields=fields,
        decisions=decisions,
        priority_field=process.priority_field if priority_field is None else priority_field,
    )
    process = Process.objects.select_for_update().get(pk=process.pk)
    current = process.schema
    if current is not None and current.fields == specs and current.decisions == options:
        return current
    version = (current.version if current else 0) + 1
    process.schema = ProcessSchemaVersion.objects.create(
        process=process, version=version, fields=specs, decisions=options, created_by=changed_by
    )
    process.save(update_fields=["schema", "updated_at"])
    return process.schema


def update_process_settings(
    *,
    process: Process,
    name: str,
    description: str,
    minutes_per_case: float,
    overlap: int,
    priority_field: str,
    priority_descending: bool,
) -> Process:
    clean_priority_field(specs=process.schema.fields, priority_field=priority_field)
    if not (1 <= int(overlap) <= 10):
        raise ValidationError("overlap must be between 1 and 10")
    reprioritise = (process.priority_field, process.priority_descending) != (
        priority_field,
        priority_descending,
    )
    overlap_lowered = int(overlap) < process.overlap
    process.name = name
    process.description = description
    process.minutes_per_case = minutes_per_case
    process.overlap = overlap
    process.priority_field = priority_field
    process.priority_descending = priority_descending
    process.full_clean(exclude=["schema"])
    # Only the settings: the schema pointer may have moved since `process` was loaded.
    process.save(
        update_fields=[
            "name", "description", "minutes_per_case", "overlap", "priority_field",
            "priority_descending", "updated_at",
        ]
    )  # fmt: skip
    if reprioritise:
        recompute_priorities(process=process)
    if overlap_lowered:
        settle_open_cases(process=process)
    return process


@transaction.atomic
def settle_open_cases(*, process: Process) -> int:
    """After the overlap was lowered, open cases that already have enough labels settle now
    (decided or to adjudication) instead of waiting for labels the queue will never ask for."""
    from apps.cases.services.decisions import settle_case

    ready = Case.objects.filter(
        process=process,
        status=CaseStatus.OPEN,
        label_count__gte=F("extra_labels") + process.overlap,
    )
    # Locked in id order first, like every writer of several cases (apps/core/db.py).
    ids = lock_in_order(ready, no_key=False)
    cases = Case.objects.select_related("process").in_bulk(ids)
    for pk in ids:
        settle_case(case=cases[pk])
    return len(ids)


def recompute_priorities(*, process: Process) -> int:
    """Re-derive the queue priority of the open cases after the priority rule changed."""
    specs = process.schema.fields
    batch: list[Case] = []
    updated = 0
    cases = Case.objects.filter(process=process, status=CaseStatus.OPEN).only("pk", "fields")
    for case in cases.iterator(chunk_size=2000):
        case.priority = priority_of(
            specs,
            case.fields,
            field_name=process.priority_field,
            descending=process.priority_descending,
        )
        batch.append(case)
        if len(batch) >= 2000:
            updated += _save_priorities(batch)
            batch = []
    if batch:
        updated += _save_priorities(batch)
    return updated


@transaction.atomic
def _save_priorities(batch: list[Case]) -> int:
    # bulk_update's UPDATE locks rows in whatever order its plan reads them: lock them in id
    # order first, so it waits for a decisions import instead of deadlocking with it.
    lock_in_order(Case.objects.filter(pk__in=[case.pk for case in batch]))
    return Case.objects.bulk_update(batch, ["priority"])


def set_process_people(
    *, process: Process, reviewers: list[AbstractUser], adjudicators: list[AbstractUser]
) -> None:
    """Name who reviews (experts of the team; none named = all of them) and who adjudicates
    (members of the team; none named = its managers). Raises ValidationError for outsiders."""
    from apps.people.models import Membership, Role

    experts = set(
        Membership.objects.filter(team=process.team, role=Role.EXPERT).values_list(
            "user_id", flat=True
        )
    )
    members = set(Membership.objects.filter(team=process.team).values_list("user_id", flat=True))
    not_experts = [u.username for u in reviewers if u.pk not in experts]
    if not_experts:
        raise ValidationError(
            f"reviewers must be experts of {process.team.name}: {', '.join(not_experts)}"
        )
    outsiders = [u.username for u in adjudicators if u.pk not in members]
    if outsiders:
        raise ValidationError(
            f"adjudicators must be members of {process.team.name}: {', '.join(outsiders)}"
        )
    process.reviewers.set(reviewers)
    process.adjudicators.set(adjudicators)
