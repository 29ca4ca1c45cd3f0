"""Demo: the invoice process gets induced rules and a promoted model trained on all but its latest
decisions; the claims process a model too. Idempotent: a process that already has rules or models
is left as it is."""

from datetime import datetime

from django.contrib.auth import get_user_model

from apps.cases.demo import AP_SLUG, CLAIMS_SLUG
from apps.cases.models import Case, CaseStatus, Process
from apps.classifiers import services
from apps.classifiers.models import ModelVersion, TrainingJob
from apps.classifiers.types import TrainingRefused

INDUCED_RULES = 3
HELD_BACK = 400  # the invoice process's latest decided cases, unseen by its demo model


def _induce_rules(process: Process, owner: object) -> int:
    from apps.rules.models import Rule
    from apps.rules.services import authoring, backtest, induction

    if Rule.objects.filter(process=process).exists():
        return 0
    candidates = [
        c
        for c in induction.induce_rules(process=process, min_precision=0.9)
        if "decide" in c.action
    ][:INDUCED_RULES]
    for index, candidate in enumerate(candidates, start=1):
        rule = authoring.create_rule(
            process=process,
            owner=owner,
            name=f"Induced {index}: {candidate.action['decide'].replace('_', ' ')}",
            condition=candidate.condition,
            action=candidate.action,
            priority=10 * index,
            provenance={
                "source": "induced",
                "method": "tree",
                "support": candidate.support,
                "precision": round(candidate.precision, 4),
                "note": "accepted by the demo seed",
            },
        )
        backtest.backtest_rule(rule=rule)
        authoring.enable_rule(rule=Rule.objects.get(pk=rule.pk))
    return len(candidates)


def _cutoff(process: Process) -> datetime | None:
    """When the latest HELD_BACK decided cases began: the model is trained on the ones before,
    so the autonomy demo can measure it on decisions it has never seen."""
    return (
        Case.objects.filter(process=process, status=CaseStatus.DECIDED)
        .order_by("-decided_at")
        .values_list("decided_at", flat=True)[HELD_BACK - 1 : HELD_BACK]
        .first()
    )


def _train_and_promote(
    process: Process, user: object, decided_before: datetime | None = None
) -> ModelVersion | None:
    if ModelVersion.objects.filter(process=process).exists():
        return None
    try:
        job = services.start_training(
            process=process, requested_by=user, decided_before=decided_before
        )
    except (TrainingRefused, services.TrainingInProgress):
        return None
    # Trained here rather than by the worker, so the demo has its model as soon as it starts.
    job = services.run_training_job(job.pk)
    if job.state != TrainingJob.State.SUCCEEDED:
        return None
    return services.promote(version=job.model_version, actor=user, note="demo seed")


def seed_learning_demo() -> str:
    User = get_user_model()
    expert = User.objects.filter(username="erin").first()
    manager = User.objects.filter(username="maya").first()
    lines = []
    invoices = Process.objects.filter(slug=AP_SLUG).first()
    if invoices is not None and expert is not None:
        induced = _induce_rules(invoices, expert)
        if induced:
            lines.append(f"{invoices.name}: {induced} induced rules, backtested and enabled")
    for slug in (AP_SLUG, CLAIMS_SLUG):
        process = Process.objects.filter(slug=slug).first()
        if process is None:
            continue
        cutoff = _cutoff(process) if slug == AP_SLUG else None
        version = _train_and_promote(process, manager or expert, cutoff)
        if version is not None:
            lines.append(
                f"{process.name}: model v{version.version} ({version.algorithm_label}, "
                f"macro-F1 {version.metrics['macro_f1']:.2f}) promoted"
            )
    return "\n".join(lines)
