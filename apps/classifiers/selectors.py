from django.db.models import QuerySet

from apps.cases.models import Process
from apps.classifiers.models import ModelVersion, RegistryEvent, TrainingJob
from apps.people.models import Role
from apps.people.selectors import AnyUser, roles_of


def model_versions_of(*, process: Process) -> QuerySet[ModelVersion]:
    return (
        ModelVersion.objects.filter(process=process)
        .defer("snapshot_ids")
        .select_related("trained_by", "promoted_by", "schema_version")
        .order_by("-version")
    )


def recent_jobs(*, process: Process, limit: int = 10) -> list[TrainingJob]:
    return list(
        TrainingJob.objects.filter(process=process)
        .select_related("requested_by", "model_version", "process")
        .order_by("-created_at")[:limit]
    )


def registry_history(*, process: Process, limit: int = 30) -> QuerySet[RegistryEvent]:
    return (
        RegistryEvent.objects.filter(process=process)
        .select_related("model_version", "actor")
        .order_by("-at", "-pk")[:limit]
    )


def can_train(*, user: AnyUser, process: Process) -> bool:
    """The team's experts, managers and admins start trainings."""
    return bool(roles_of(user=user, team=process.team) & {Role.EXPERT, Role.MANAGER, Role.ADMIN})


def can_promote(*, user: AnyUser, process: Process) -> bool:
    """Promotion changes what every expert is shown: the team's managers and admins decide it."""
    return bool(roles_of(user=user, team=process.team) & {Role.MANAGER, Role.ADMIN})
