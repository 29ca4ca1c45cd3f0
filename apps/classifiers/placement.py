"""Where a model version predicts: `gpu_only` keeps it to GPU nodes of the compute fabric. An
orchestration whose version (or shadow version) pins such a model sends its items to those nodes,
never evaluates them in the web request (apps/orchestrations/execution.py `requirements_of`)."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from apps.classifiers.models import ModelVersion, RegistryEvent


@transaction.atomic
def set_gpu_only(
    *, version: ModelVersion, gpu_only: bool, actor: AbstractBaseUser | None
) -> ModelVersion:
    """Mark `version` GPU-only (or not). The caller checks the actor may (the team's managers
    and admins: `selectors.can_promote`). A change is a `gpu_only` event of the registry's
    history; the same value again records nothing. Runs already dispatched keep their placement.
    Returns the version, reloaded."""
    version = ModelVersion.objects.select_for_update().defer("snapshot_ids").get(pk=version.pk)
    if version.gpu_only != gpu_only:
        version.gpu_only = gpu_only
        version.save(update_fields=["gpu_only"])
        RegistryEvent.objects.create(
            process_id=version.process_id,
            model_version=version,
            kind="gpu_only" if gpu_only else "any_node",
            actor=actor,
            data={"gpu_only": gpu_only},
            at=timezone.now(),
        )
    return version
