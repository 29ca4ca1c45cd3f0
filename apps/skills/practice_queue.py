"""Gold cases mixed into the real review queue, for experts new to a process.

A process's practice setting gives a share (0 to 0.5, default 0) and a bar (`new_below`
decisions). While an expert has fewer decisions than that in the process, that share of the cases
their queue hands out are gold cases, shown as normal cases. Their answer is recorded as a
practice attempt against the gold label, never as a decision: the gold case stays as it was, and
their accuracy is measured as they work.

The share is kept exactly rather than drawn at random: a gold case is served when the gold cases
served so far (answered or skipped) are fewer than `share` of everything served, counting the one
about to be, i.e. served < share * (served + decisions + 1). With 0.2 that is the first case, then
one in five. The cases app calls in through apps/core/registry.py (ReviewQueueHook).
"""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from apps.cases.models import Case, Decision, DecisionSource, Process
from apps.core.display import readable_code
from apps.skills.gold import Setting, practice_setting
from apps.skills.models import AttemptSource, GoldCase, GoldServe, PracticeAttempt
from apps.skills.practice import labelled_by, record_attempt

# The labels that count as an expert's own decisions in a process (not adjudications or models).
_OWN = [DecisionSource.REVIEW, DecisionSource.API, DecisionSource.IMPORT]


def _pending(process: Process, expert: AbstractBaseUser) -> GoldServe | None:
    return (
        GoldServe.objects.filter(
            person=expert,
            process=process,
            answered_at__isnull=True,
            skipped_at__isnull=True,
            gold__unmarked_at__isnull=True,
        )
        .select_related("gold__case")
        .first()
    )


def _unseen_gold(process: Process, expert: AbstractBaseUser) -> GoldCase | None:
    """An active gold case the expert has never been served, practised or labelled."""
    return (
        GoldCase.objects.filter(process=process, unmarked_at__isnull=True)
        .exclude(case_id__in=labelled_by(expert))
        .exclude(pk__in=GoldServe.objects.filter(person=expert).values("gold_id"))
        .exclude(pk__in=PracticeAttempt.objects.filter(person=expert).values("gold_id"))
        .select_related("case")
        .order_by("marked_at", "pk")
        .first()
    )


def gold_due(*, process: Process, expert: AbstractBaseUser, setting: Setting | None = None) -> bool:
    """Whether the expert's next case should be gold under the process's setting."""
    setting = setting or practice_setting(process=process)
    if setting.gold_share <= 0:
        return False
    decisions = Decision.objects.filter(
        case__process=process, expert=expert, retracted_at__isnull=True, source__in=_OWN
    ).count()
    if decisions >= setting.new_below:
        return False
    served = GoldServe.objects.filter(person=expert, process=process).count()
    return served < setting.gold_share * (served + decisions + 1)


def serve_gold(process: Process, expert: AbstractBaseUser) -> Case | None:
    """The gold case to show `expert` now in `process`'s review queue, or None for a real one.

    A gold case served and not yet answered comes back first (like a held claim), while the
    process has a share. Share 0 (every process by default) costs the review request one query."""
    setting = practice_setting(process=process)
    if setting.gold_share <= 0:
        return None
    pending = _pending(process, expert)
    if pending is not None:
        return pending.gold.case
    if not gold_due(process=process, expert=expert, setting=setting):
        return None
    gold = _unseen_gold(process, expert)
    if gold is None:
        return None
    GoldServe.objects.create(person=expert, gold=gold, process=process, served_at=timezone.now())
    return gold.case


@transaction.atomic
def answer_gold(
    process: Process, case: Case, expert: AbstractBaseUser, answer: dict[str, object]
) -> str | None:
    """Take the expert's answer to a gold case served in their queue: a practice attempt, not a
    decision. Returns the notice to show, or None when `case` is not a gold case served to them
    (the queue then records a decision as usual)."""
    serve = (
        GoldServe.objects.select_for_update(of=("self",))
        .filter(
            person=expert,
            process=process,
            gold__case=case,
            answered_at__isnull=True,
            skipped_at__isnull=True,
        )
        .select_related("gold__process__schema")
        .first()
    )
    if serve is None:
        return None
    now = timezone.now()
    label = str(answer.get("label") or "")
    record_attempt(
        gold=serve.gold,
        person=expert,
        label=label,
        reason_code=str(answer.get("reason_code") or ""),
        rationale=str(answer.get("rationale") or ""),
        source=AttemptSource.QUEUE,
        at=now,
    )
    serve.answered_at = now
    serve.save(update_fields=["answered_at"])
    # Worded like a recorded decision: the case was shown as a normal one.
    return f"Recorded {readable_code(label)} for case {case.external_id or case.pk}."


def skip_gold(process: Process, case: Case, expert: AbstractBaseUser) -> bool:
    """A skip of a gold case served in the queue: it is not served again (no attempt)."""
    updated = GoldServe.objects.filter(
        person=expert,
        process=process,
        gold__case=case,
        answered_at__isnull=True,
        skipped_at__isnull=True,
    ).update(skipped_at=timezone.now())
    return bool(updated)
