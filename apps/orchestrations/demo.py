"""The orchestrations part of the demo (`seed_demo` calls it after the autonomy demo): a live
orchestration of the invoice process with a history (v1 retired, v2 live, v3 in shadow), a
connector for the simulated source system (`manage.py simulate_source`), and a few dozen runs made
through the real inbound service, so the pages have something to show.

A challenger runs in shadow beside v2's model: the invoice process's model retrained on every
decision (the promoted one leaves out the latest 400, which the autonomy demo measures it on),
trained once by the real training path and reused by a second seed. The items v2 routes to people
are then decided by the demo's experts (erin, eli) as the invoice policy says, with its noise,
except every third, which waits in the queue: the comparison page has real agreement, precision
against the experts and coverage figures, and the orchestrations list has work waiting.

The connector is pinned by the shadow version only (which acts on nothing): the seeded runs send
no callbacks, so a fresh demo has no backlog for a receiver that isn't running yet;
simulate_source names it as each item's `callback`."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.autonomy.selectors import autonomy_of
from apps.cases import demo as cases_demo
from apps.cases.models import Case, CaseStatus, Process
from apps.cases.services.decisions import record_decision
from apps.classifiers import services as classifier_services
from apps.classifiers.models import ModelVersion, TrainingJob
from apps.classifiers.types import TrainingRefused
from apps.connectors.models import Connector
from apps.connectors.services.connectors import create_connector
from apps.orchestrations import challenger, inbound, services, simulator
from apps.orchestrations.models import Orchestration, Run, Stage
from apps.rules.models import Rule
from apps.rules.services import authoring, backtest

DEMO_SLUG = "invoice-exceptions"
RUNS_ON_V1 = 12
RUNS_ON_V2 = 36
SEED = 20261203


def _items(count: int, *, prefix: str, seed: int) -> list[dict]:
    return [
        {"external_id": f"{prefix}-{n:04d}", "fields": fields}
        for n, (fields, *_) in enumerate(
            cases_demo.synthetic_invoice_cases(count, seed=seed), start=1
        )
    ]


def _expert_answers(count: int, *, prefix: str, seed: int) -> dict[str, tuple[str, str, str]]:
    """{external id: (label, reason code, rationale)} the demo's experts give the items `_items`
    makes with the same arguments: the policy's decision, or (with the demo's noise) another."""
    answers = {}
    rows = cases_demo.synthetic_invoice_cases(count, seed=seed)
    for n, (_, exception, _, policy_label, label) in enumerate(rows, start=1):
        policy = next(
            (
                r
                for r in cases_demo.AP_RULES.values()
                if r.label == policy_label and r.exception == exception
            ),
            None,
        )
        rule = f"rule {policy.name} of the invoice policy" if policy else "the invoice policy"
        option = next(d for d in cases_demo.AP_DECISIONS if d["label"] == label)
        codes = option["reason_codes"]
        if label == policy_label:
            code = policy.reason_code if policy and policy.reason_code in codes else codes[0]
            rationale = f"As {rule} says: {option['description']}"
        else:
            code = codes[0]
            rationale = f"Judgement call against {rule}: {option['description']}"
        answers[f"{prefix}-{n:04d}"] = (label, code, rationale)
    return answers


def _challenger_model(process: Process, owner: object) -> ModelVersion | None:
    """The demo's challenger: the invoice process's model retrained on every decision, trained
    in this process (as the learning demo trains the first one) and never promoted; an earlier
    seed's is reused. None when it can't be trained."""
    existing = (
        ModelVersion.objects.filter(process=process, is_promoted=False)
        .defer("snapshot_ids")
        .order_by("-version")
        .first()
    )
    if existing is not None:
        return existing
    try:
        job = classifier_services.start_training(process=process, requested_by=owner)
    except (TrainingRefused, classifier_services.TrainingInProgress):
        return None
    job = classifier_services.run_training_job(job.pk)
    return job.model_version if job.state == TrainingJob.State.SUCCEEDED else None


def _decide_routed(orchestration: Orchestration, answers: dict[str, tuple[str, str, str]]) -> int:
    """The demo's experts decide the open cases of the orchestration's items as `answers` say,
    all but every third (left waiting); an item routed to an expert is decided by them. Returns
    how many were decided."""
    experts = {u.username: u for u in get_user_model().objects.filter(username__in=["erin", "eli"])}
    if not experts:
        return 0
    runs = (
        Run.objects.filter(
            orchestration=orchestration, case__status=CaseStatus.OPEN, external_id__in=answers
        )
        .select_related("case__routed_to")
        .order_by("pk")
    )
    decided = 0
    for n, run in enumerate(runs):
        if n % 3 == 2:
            continue
        case = Case.objects.get(pk=run.case_id)
        routed = case.routed_to.username if case.routed_to_id else None
        expert = (
            experts.get(routed)
            or experts.get("erin" if n % 2 else "eli")
            or next(iter(experts.values()))
        )
        label, code, rationale = answers[run.external_id]
        record_decision(
            case=case, expert=expert, label=label, reason_code=code, rationale=rationale
        )
        decided += 1
    return decided


def _connector(process: Process, owner: object) -> tuple[Connector | None, str]:
    url = f"http://127.0.0.1:{simulator.DEFAULT_PORT}{simulator.RECEIVER_PATH}"
    existing = Connector.objects.filter(team=process.team, url=url).first()
    if existing is not None:
        return existing, ""
    try:
        connector = create_connector(
            team=process.team, name="ERP (simulated: manage.py simulate_source)", url=url,
            event_types=["item.decided", "item.routed"], owner=owner,
            description="The simulated system of record on this machine: run "
            f"`python manage.py simulate_source --orchestration {DEMO_SLUG} --rate 5`.",
        )  # fmt: skip
    except ValidationError as exc:
        # Loopback is refused unless allow-listed (ORCHCAP_WEBHOOK_ALLOWED_HOSTS; 127.0.0.1 by
        # default with DEBUG on): the demo goes on without its connector.
        return None, f" (no connector: {' '.join(exc.messages)})"
    return connector, ""


# Two branches of the invoice policy (apps/cases/demo.py) written as rules for the orchestration:
# the induced rules lean on the cases' exception fields, which inbound items don't carry.
POLICY_RULES = [
    ("Recurring vendor without a PO", 5,
     {"all": [{"field": "po_match", "op": "eq", "value": "missing"},
              {"field": "vendor", "op": "in", "value": cases_demo.RECURRING_VENDORS},
              {"field": "amount", "op": "le", "value": 10_000}]},
     {"decide": "approve", "reason_code": "recurring_vendor"}),
    ("Vendor not in the vendor master", 6,
     {"field": "vendor", "op": "in", "value": cases_demo.NEW_VENDORS},
     {"decide": "route_to_procurement", "reason_code": "new_vendor"}),
]  # fmt: skip


def _policy_rules(process: Process, owner: object) -> list[Rule]:
    made = []
    for name, priority, condition, action in POLICY_RULES:
        rule = Rule.objects.filter(process=process, name=name).first()
        if rule is None:
            rule = authoring.create_rule(
                process=process, owner=owner, name=name, condition=condition, action=action,
                priority=priority,
                description="Written for the demo orchestration from the invoice policy.",
            )  # fmt: skip
            backtest.backtest_rule(rule=rule)
            rule = authoring.enable_rule(rule=Rule.objects.get(pk=rule.pk))
        made.append(rule)
    return made


def seed_orchestration_demo() -> str:
    """Idempotent: does nothing when the demo orchestration exists, or without the invoice
    process, its promoted model or maya."""
    if Orchestration.objects.filter(slug=DEMO_SLUG).exists():
        return "Orchestrations demo: already present"
    process = Process.objects.filter(slug=cases_demo.AP_SLUG).select_related("team").first()
    model = ModelVersion.objects.filter(process=process, is_promoted=True).first()
    owner = get_user_model().objects.filter(username="maya").first()
    if process is None or model is None or owner is None:
        return "Orchestrations demo: the invoice process or its model is missing; skipped"
    earned = autonomy_of(process=process)
    level = min(earned.level, 2)
    threshold = max(earned.threshold, 0.5) if level else 0.9
    # An expert route needs an expert of the team: erin is one in the demo organisation.
    routes = {"route_to_procurement": "team:ap", "reject": "expert:erin"}
    with transaction.atomic():
        policy = _policy_rules(process, owner)
        induced = list(
            Rule.objects.filter(process=process, enabled=True)
            .exclude(pk__in=[r.pk for r in policy])
            .order_by("priority", "pk")
        )
        connector, note = _connector(process, owner)
        orchestration = services.create_orchestration(
            process=process, slug=DEMO_SLUG, name="Invoice exceptions", owner=owner
        )
        v1 = services.create_version(
            orchestration=orchestration, actor=owner,
            values={"rules": [{"rule": policy[0].pk}],
                    "model_version": model.version, "autonomy_level": min(level, 1),
                    "threshold": threshold, "routes": routes, "sla_minutes": 480},
        )  # fmt: skip
        services.change_stage(version=v1, stage=Stage.LIVE, actor=owner, reason="demo: first go")
    inbound.receive_items(
        orchestration=orchestration, items=_items(RUNS_ON_V1, prefix="ERP-2026-A", seed=SEED)
    )
    with transaction.atomic():
        v2 = services.create_version(
            orchestration=orchestration, actor=owner, base=v1,
            values={"rules": [{"rule": r.pk} for r in [*policy, *induced]],
                    "autonomy_level": level, "sla_minutes": 240,
                    # Small invoices stay with the ERP's own approval flow.
                    "exception_filter": {"field": "amount", "op": "gt", "value": 1000}},
        )  # fmt: skip
        services.change_stage(
            version=v2, stage=Stage.LIVE, actor=owner,
            reason="demo: the policy and induced rules, suggestions at the level the process "
            "earned, invoices up to 1,000 left to the ERP",
        )  # fmt: skip
        v3 = services.create_version(
            orchestration=orchestration, actor=owner, base=v2,
            values={"exception_filter": {"field": "amount", "op": "gt", "value": 2500},
                    "sla_minutes": 120,
                    "connectors": [connector.pk] if connector is not None else []},
        )  # fmt: skip
        services.change_stage(
            version=v3, stage=Stage.SHADOW, actor=owner,
            reason="demo: could invoices up to 2,500 be left to the ERP as well?",
        )  # fmt: skip
    retrained = _challenger_model(process, owner)
    if retrained is not None:
        challenger.set_challenger(
            orchestration=orchestration, model_version=retrained.version, actor=owner,
            reason="demo: the model retrained on every decision, the latest ones included",
        )  # fmt: skip
    inbound.receive_items(
        orchestration=orchestration, items=_items(RUNS_ON_V2, prefix="ERP-2026-B", seed=SEED + 1)
    )
    with transaction.atomic():
        decided = _decide_routed(
            orchestration, _expert_answers(RUNS_ON_V2, prefix="ERP-2026-B", seed=SEED + 1)
        )
    allowed = (
        ""
        if connector is None or settings.ORCHCAP_WEBHOOK_ALLOWED_HOSTS
        else " (loopback not allow-listed)"
    )
    return (
        f"Orchestrations demo: {orchestration.name!r} ({DEMO_SLUG}) v1 retired, v2 live, v3 in "
        f"shadow, {RUNS_ON_V1 + RUNS_ON_V2} runs ({decided} decided by the demo's experts); "
        + (
            f"challenger model v{retrained.version} beside the live model v{model.version}; "
            if retrained is not None
            else "no challenger (the invoice model could not be retrained); "
        )
        + f"connector for simulate_source on port {simulator.DEFAULT_PORT}{note}{allowed}"
    )
