"""The demo's gold cases and `sam`'s practice (run by seed_skills_demo, idempotent).

`maya` (manager of Accounts Payable) marks five decided invoice cases gold, one per decision where
the history allows, each with the rationale its deciding label gave; `sam` (staff) practised on
three of them, two right and one wrong. Nothing is added when the process already has gold cases
or sam already has answers, so a second seed changes nothing."""

from django.contrib.auth import get_user_model

from apps.cases.demo import AP_SLUG
from apps.cases.models import Case, CaseStatus, Process
from apps.skills.gold import mark_gold
from apps.skills.models import GoldCase, PracticeAttempt
from apps.skills.practice import record_attempt

GOLD_PER_PROCESS = 5
SAM_ANSWERS = 3


def _decided_with_rationale(process: Process) -> list[Case]:
    """Decided cases, spread over the labels (oldest first within each), whose final label came
    with a rationale."""
    by_label: dict[str, list[Case]] = {}
    cases = (
        Case.objects.filter(process=process, status=CaseStatus.DECIDED)
        .exclude(final_label="")
        .filter(decisions__rationale__gt="", decisions__retracted_at__isnull=True)
        .distinct()
        .order_by("decided_at", "pk")[:300]
    )
    for case in cases:
        by_label.setdefault(case.final_label, []).append(case)
    chosen: list[Case] = []
    while len(chosen) < GOLD_PER_PROCESS and any(by_label.values()):
        for label in sorted(by_label):
            if by_label[label] and len(chosen) < GOLD_PER_PROCESS:
                chosen.append(by_label[label].pop(0))
    return chosen


def seed_practice_demo() -> str:
    users = {u.username: u for u in get_user_model().objects.filter(username__in=["sam", "maya"])}
    process = Process.objects.filter(slug=AP_SLUG).select_related("schema").first()
    if process is None or len(users) < 2:
        return "Practice: skipped (no demo process or people)."
    made = 0
    if not GoldCase.objects.filter(process=process).exists():
        for case in _decided_with_rationale(process):
            mark_gold(case=case, by=users["maya"])
            made += 1
    answered = 0
    sam = users["sam"]
    if not PracticeAttempt.objects.filter(person=sam).exists():
        labels = [option["label"] for option in process.schema.decisions]
        golds = list(
            GoldCase.objects.filter(process=process, unmarked_at__isnull=True)
            .select_related("process__schema")
            .order_by("marked_at", "pk")[:SAM_ANSWERS]
        )
        for index, gold in enumerate(golds):
            # Two right, the last one wrong (the first other label).
            label = gold.label if index < 2 else next(x for x in labels if x != gold.label)
            record_attempt(gold=gold, person=sam, label=label, rationale="Demo practice answer.")
            answered += 1
    return f"Practice: {made} gold cases marked, {answered} practice answers for sam."
