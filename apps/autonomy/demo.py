"""The autonomy part of the demo: one process at level 2, promoted on backfilled evidence, and one
in shadow mode towards level 3 (`seed_demo` calls this after training the demo model).

The level-2 promotion cannot rest on real shadow predictions, because a fresh demo has no cases
that experts decided after a prediction. Its evidence is *backfilled*: the promoted model predicts
historical decided cases and is judged against their final labels. The evidence says so, and says
when those cases were also in the model's training data (then the precision is optimistic).
"""

from django.db.models import Count, Q

from apps.autonomy.models import AutonomyChange, Level
from apps.autonomy.services import gate, levels, shadow
from apps.cases.models import CaseStatus, Process
from apps.classifiers.models import ModelVersion

DEMO_TARGET_PRECISION = 0.9
BACKFILL = 1000


def _demo_processes() -> list[Process]:
    promoted = ModelVersion.objects.filter(is_promoted=True).values("process_id")
    return list(
        Process.objects.filter(is_synthetic=True, pk__in=promoted)
        .annotate(decided=Count("cases", filter=Q(cases__status=CaseStatus.DECIDED)))
        .order_by("-decided", "pk")
    )


def _promote_on_backfill(process: Process) -> str:
    backfill = shadow.backfill_decided_evidence(process=process, limit=BACKFILL)
    levels.update_autonomy_settings(
        process=process, actor=None, values={"target_precision": DEMO_TARGET_PRECISION}
    )
    probe = gate.evaluate(process=process, target=Level.SUGGEST, include_backfilled=True)
    if probe["suggested_threshold"] is not None:
        # What a manager does with the sweep: the lowest threshold that reaches the target.
        levels.update_autonomy_settings(
            process=process, actor=None, values={"threshold": probe["suggested_threshold"]}
        )
    caveat = (
        " These cases were also in the model's training data, so the precision is optimistic."
        if backfill["in_sample"]
        else ""
    )
    try:
        levels.promote_autonomy(
            process=process,
            level=Level.SUGGEST,
            actor=None,
            include_backfilled=True,
            reason=(
                f"demo: promoted on backfilled evidence — {backfill['made']} historical decided "
                f"cases predicted after the fact, not shadow predictions made beforehand.{caveat}"
            ),
            extra_evidence={"backfill": {**backfill, "kind": "historical decided cases"}},
        )
    except levels.GateFailed as exc:
        return f"{process.name}: stays at level 0 ({' '.join(exc.messages)})"
    return f"{process.name}: level 2 (suggest) on {backfill['made']} backfilled predictions"


def seed_autonomy_demo(*, processes: list[Process] | None = None) -> str:
    """Put the demo process with the most decisions at level 2 and another (or the same one) in
    shadow mode towards level 3. Idempotent: a process with autonomy history is left alone."""
    processes = processes if processes is not None else _demo_processes()
    if not processes:
        return "Autonomy demo: no synthetic process has a promoted model; nothing to do"
    lines = []
    first = processes[0]
    second = processes[1] if len(processes) > 1 else first
    if AutonomyChange.objects.filter(process=first).exists():
        lines.append(f"{first.name}: autonomy already seeded")
    else:
        lines.append(_promote_on_backfill(first))
    if second.pk == first.pk or not AutonomyChange.objects.filter(process=second).exists():
        autonomy = levels.autonomy_for(process=second)
        if autonomy.level < Level.DECIDE and autonomy.target is None:
            levels.start_shadow(
                process=second,
                target=Level.DECIDE,
                actor=None,
                reason="demo: earning level 3 on the cases experts decide from now on",
            )
            made = shadow.backfill_open_cases(process=second)
            lines.append(f"{second.name}: shadow mode towards level 3, {made} open cases predicted")
    return "Autonomy demo: " + "; ".join(lines)
