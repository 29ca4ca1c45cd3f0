"""Synthetic demo processes that `seed_demo` loads, generated from the documented policies below.

Accounts Payable — invoice exceptions (`ap-invoice-exceptions`)
--------------------------------------------------------------
An invoice lands here when automatic matching fails. Amounts are compared in EUR at fixed rates
(1 USD = 0.92 EUR, 1 GBP = 1.17 EUR). The first rule that applies decides:

1. The vendor already sent an invoice with the same number → reject / duplicate.
2. The note says the vendor's bank details changed → reject / suspected_fraud.
3. The vendor is not in the vendor master → route_to_procurement / new_vendor.
4. No purchase order (po_match = missing):
   a. above 10,000 EUR → route_to_procurement / no_po_over_limit;
   b. a recurring vendor (utilities, telecom, archiving) → approve / recurring_vendor;
   c. otherwise → request_info / missing_po.
5. The invoice differs from its PO (po_match = mismatch; the note gives the difference):
   within 2 % → approve / within_tolerance, more → request_info / unclear_amount.
6. Goods received for only part of the PO (po_match = partial) → request_info / unclear_amount.
7. The PO matches (po_match = matched):
   a. a service invoice with no framework contract on file → reject / no_contract;
   b. otherwise (payment blocked because the invoice is overdue) → approve / po_confirmed.

About 60 % of the cases carry a historical decision by erin or eli from the last 90 days, 8 % of
which deviate from the policy (the noise every real decision log has); the rest are open.

Claims — triage (`claims-triage`, two experts label each claim)
---------------------------------------------------------------
1. Reported more than 60 days after the incident → deny / late_notice.
2. Three or more prior claims in three years → investigate / suspected_fraud.
3. Claimed above 25,000 EUR → investigate / high_value.
4. Auto or property damage above 2,000 EUR without a police report → request_documents /
   missing_report.
5. Travel or health above 2,000 EUR without receipts attached → request_documents /
   missing_receipts.
6. Otherwise pay: up to 1,000 EUR → pay / within_limit (fast track), above → pay / covered.

A few dozen claims carry two agreeing historical labels (erin and eli), a handful two disagreeing
ones (so they wait for adjudication), the rest are open.

Every case is marked synthetic and generated with a fixed seed, so the demo is the same each time.
"""

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from apps.cases.models import Case, Process
from apps.cases.services.intake import create_cases, import_decisions
from apps.cases.services.processes import create_process
from apps.cases.services.similarity import embed_cases
from apps.people.models import Team

AP_SLUG = "ap-invoice-exceptions"
CLAIMS_SLUG = "claims-triage"
AP_CASES = 3000
AP_DECIDED_SHARE = 0.6
CLAIMS_CASES = 500
CLAIMS_DECIDED = 260
CLAIMS_DISPUTED = 8
NOISE = 0.08
SEED = 20260131
BATCH = 1000
# Who the historical decisions are by, per process (members of the process's team).
DEMO_EXPERTS = {"ap-invoice-exceptions": {"erin", "eli"}, "claims-triage": {"erin", "eli"}}

# --- accounts payable ----------------------------------------------------------------------------

RECURRING_VENDORS = ["Stadtwerke München", "Deutsche Telekom", "Iron Mountain"]
SUPPLIERS = [
    "Acme Industrial Supply",
    "Bosch Rexroth",
    "Würth Group",
    "Staples Business Advantage",
    "DHL Freight",
    "Siemens AG",
    "3M Deutschland",
]
NEW_VENDORS = ["Nordlicht Consulting", "Brightpath Software"]
# What each vendor bills: every note starts with it, as an invoice's line text would.
VENDOR_GOODS = {
    "Stadtwerke München": "Electricity and water for plant 2",
    "Deutsche Telekom": "Mobile and fixed-line contracts",
    "Iron Mountain": "Document archiving and shredding",
    "Acme Industrial Supply": "Fasteners and safety gloves",
    "Bosch Rexroth": "Hydraulic pumps and spare parts",
    "Würth Group": "Screws, anchors and workshop consumables",
    "Staples Business Advantage": "Office paper and toner",
    "DHL Freight": "Inbound pallet freight",
    "Siemens AG": "Drive controllers for line 2",
    "3M Deutschland": "Abrasives and protective equipment",
    "Nordlicht Consulting": "Process consulting days",
    "Brightpath Software": "Annual software licences",
}
VENDORS = RECURRING_VENDORS + SUPPLIERS + NEW_VENDORS
TO_EUR = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17}
NO_PO_LIMIT_EUR = 10_000
TOLERANCE_PERCENT = 2.0
BANK_CHANGE = "bank details changed"
NO_CONTRACT = "no framework contract"
_VARIANCE = re.compile(r"differs from the PO by (\d+(?:\.\d+)?)%", re.IGNORECASE)
_VARIANCES = [0.3, 0.8, 1.2, 1.5, 1.9, 2.0, 2.6, 3.4, 4.8, 7.5]  # percent; 2.0 is still within

AP_FIELDS = [
    {"name": "vendor", "type": "category", "choices": VENDORS, "required": True, "group": "Vendor"},
    {"name": "invoice_number", "type": "text", "required": True, "group": "Invoice"},
    {"name": "amount", "type": "money", "required": True, "group": "Invoice",
     "help_text": "Invoice total in the invoice currency."},
    {"name": "currency", "type": "category", "choices": list(TO_EUR), "required": True,
     "group": "Invoice"},
    {"name": "po_match", "type": "category", "label": "PO match",
     "choices": ["matched", "missing", "mismatch", "partial"], "required": True, "group": "Matching"},
    {"name": "days_overdue", "type": "number", "group": "Payment"},
    {"name": "invoice_date", "type": "date", "required": True, "group": "Invoice"},
    {"name": "note", "type": "text", "group": "Matching"},
]  # fmt: skip
AP_DECISIONS = [
    {"label": "approve", "description": "Release the invoice for payment.",
     "reason_codes": ["within_tolerance", "po_confirmed", "recurring_vendor"]},
    {"label": "reject", "description": "Refuse the invoice and tell the vendor.",
     "reason_codes": ["duplicate", "no_contract", "suspected_fraud"]},
    {"label": "request_info", "description": "Ask the vendor or the requester for what is missing.",
     "reason_codes": ["missing_po", "unclear_amount"]},
    {"label": "route_to_procurement", "description": "Procurement must act before AP can pay.",
     "reason_codes": ["no_po_over_limit", "new_vendor"]},
]  # fmt: skip


@dataclass(frozen=True)
class Rule:
    """One branch of a policy: the decision it prescribes and how the exception shows up."""

    name: str
    label: str
    reason_code: str
    exception: str
    at_fault: tuple[str, ...]
    rationale: str  # str.format() with the case's context (see _context)


AP_RULES = {
    "duplicate": Rule("1", "reject", "duplicate",
        "Possible duplicate: this invoice number was already received from the vendor",
        ("vendor", "invoice_number"),
        "{vendor} already sent invoice {invoice_number}; paying it again would be a duplicate."),
    "bank_change": Rule("2", "reject", "suspected_fraud",
        "Vendor bank details changed since the last payment", ("note",),
        "Bank details changed by letter: treat as suspected fraud until verified by phone."),
    "new_vendor": Rule("3", "route_to_procurement", "new_vendor",
        "Vendor not found in the vendor master", ("vendor",),
        "{vendor} is not in the vendor master; procurement must onboard them first."),
    "no_po_over_limit": Rule("4a", "route_to_procurement", "no_po_over_limit",
        "No purchase order referenced", ("po_match", "amount"),
        "No PO and {amount_eur:,.0f} EUR is above the 10,000 EUR limit: procurement raises a PO."),
    "recurring": Rule("4b", "approve", "recurring_vendor",
        "No purchase order referenced", ("po_match",),
        "{vendor} bills a recurring service without a PO; approved as usual."),
    "missing_po": Rule("4c", "request_info", "missing_po",
        "No purchase order referenced", ("po_match",),
        "No PO for {amount_eur:,.0f} EUR; asked the requester for the PO number."),
    "within_tolerance": Rule("5", "approve", "within_tolerance",
        "Invoice amount does not match the purchase order", ("amount", "po_match"),
        "Difference of {variance}% is within the 2% tolerance; approved."),
    "over_tolerance": Rule("5", "request_info", "unclear_amount",
        "Invoice amount does not match the purchase order", ("amount", "po_match"),
        "Difference of {variance}% is above the 2% tolerance; asked the vendor for a credit note."),
    "partial": Rule("6", "request_info", "unclear_amount",
        "Goods receipt covers only part of the purchase order", ("po_match", "amount"),
        "Only part of the goods were received; asked the vendor to invoice what was delivered."),
    "no_contract": Rule("7a", "reject", "no_contract",
        "Service invoice without a contract on file", ("vendor", "note"),
        "Services from {vendor} without a framework contract; rejected."),
    "overdue": Rule("7b", "approve", "po_confirmed",
        "Payment blocked: invoice overdue", ("days_overdue",),
        "PO and goods receipt match; {days_overdue} days overdue, released for payment."),
}  # fmt: skip


def _amount_eur(fields: dict) -> float:
    return float(fields["amount"]) * TO_EUR[fields.get("currency") or "EUR"]


def invoice_rule(fields: dict, *, duplicate: bool) -> Rule:
    """The AP policy (module docstring) for one invoice; `duplicate` if its number was seen before."""
    note = (fields.get("note") or "").lower()
    po_match = fields["po_match"]
    if duplicate:
        return AP_RULES["duplicate"]
    if BANK_CHANGE in note:
        return AP_RULES["bank_change"]
    if fields["vendor"] in NEW_VENDORS:
        return AP_RULES["new_vendor"]
    if po_match == "missing":
        if _amount_eur(fields) > NO_PO_LIMIT_EUR:
            return AP_RULES["no_po_over_limit"]
        if fields["vendor"] in RECURRING_VENDORS:
            return AP_RULES["recurring"]
        return AP_RULES["missing_po"]
    if po_match == "mismatch":
        found = _VARIANCE.search(note)
        within = found is not None and float(found.group(1)) <= TOLERANCE_PERCENT
        return AP_RULES["within_tolerance" if within else "over_tolerance"]
    if po_match == "partial":
        return AP_RULES["partial"]
    if NO_CONTRACT in note:
        return AP_RULES["no_contract"]
    return AP_RULES["overdue"]


def apply_invoice_policy(invoices: Iterable[dict]) -> list[Rule]:
    """The rule for each invoice, in intake order (an invoice number repeated by its vendor is a
    duplicate from its second appearance on)."""
    seen: set[tuple[str, str]] = set()
    rules = []
    for fields in invoices:
        key = (fields["vendor"], fields["invoice_number"])
        rules.append(invoice_rule(fields, duplicate=key in seen))
        seen.add(key)
    return rules


_ROUTINE_NOTES = ["Monthly invoice.", "Received by e-mail.", "Paper invoice, scanned.", ""]
# (scenario, weight): the mix of exceptions matching fails on.
_AP_SCENARIOS = [
    ("duplicate", 6), ("bank_change", 2), ("new_vendor", 6), ("missing", 30), ("mismatch", 22),
    ("partial", 12), ("no_contract", 7), ("overdue", 15),
]  # fmt: skip


def _invoice_fields(rng: random.Random, scenario: str, numbers: dict[str, int]) -> dict:
    if scenario == "new_vendor":
        vendor = rng.choice(NEW_VENDORS)
    elif scenario == "missing" and rng.random() < 0.35:
        vendor = rng.choice(RECURRING_VENDORS)
    else:
        vendor = rng.choice(RECURRING_VENDORS + SUPPLIERS)
    numbers[vendor] += rng.randint(1, 9)
    prefix = "".join(word[0] for word in vendor.split()).upper()
    currency = rng.choices(list(TO_EUR), weights=[80, 12, 8])[0]
    amount = round(min(max(rng.lognormvariate(8.0, 1.2), 40.0), 180_000.0), 2)
    days_overdue = rng.randint(31, 120) if scenario == "overdue" else rng.choice([0, 0, 0, 5, 12])
    note = rng.choice(_ROUTINE_NOTES)
    po_match = {"missing": "missing", "mismatch": "mismatch", "partial": "partial"}.get(
        scenario, rng.choice(["matched", "matched", "mismatch", "missing"])
    )
    if scenario in ("no_contract", "overdue"):
        po_match = "matched"
    if scenario == "mismatch":
        note = f"Invoice total differs from the PO by {rng.choice(_VARIANCES)}%."
    elif scenario == "partial":
        note = f"Goods receipt for {rng.choice([40, 50, 60, 75, 90])}% of the ordered quantity."
    elif scenario == "bank_change":
        note = "Vendor letter: bank details changed, please pay to the new IBAN."
    elif scenario == "no_contract":
        note = "Services billed; no framework contract on file."
    elif po_match == "mismatch":
        note = f"Invoice total differs from the PO by {rng.choice([0.5, 1.0, 3.0])}%."
    return {
        "vendor": vendor,
        "invoice_number": f"{prefix}-{numbers[vendor]:05d}",
        "note": f"{VENDOR_GOODS[vendor]}. {note}".strip(),
        "amount": amount,
        "currency": currency,
        "po_match": po_match,
        "days_overdue": days_overdue,
    }


def _context(fields: dict) -> dict:
    found = _VARIANCE.search(fields.get("note") or "")
    return {**fields, "amount_eur": _amount_eur(fields), "variance": found and found.group(1)}


def _generate_invoices(rng: random.Random, count: int) -> list[dict]:
    numbers = {vendor: rng.randint(1000, 8000) for vendor in VENDORS}
    sent: list[dict] = []
    for _ in range(count):
        scenario = rng.choices(*zip(*_AP_SCENARIOS, strict=True))[0]
        if scenario == "duplicate" and sent:
            original = rng.choice(sent[-400:])
            reminder = "Reminder: resubmitted by the vendor."
            fields = {**original, "note": f"{VENDOR_GOODS[original['vendor']]}. {reminder}"}
        else:
            fields = _invoice_fields(
                rng, "overdue" if scenario == "duplicate" else scenario, numbers
            )
        sent.append(fields)
    return sent


def synthetic_invoice_cases(
    count: int, *, seed: int
) -> list[tuple[dict, str, list[str], str, str]]:
    """(fields, exception reason, fields at fault, policy label, expert label with the demo's
    noise) for `count` invoices of the demo process — for benchmarks and simulations."""
    rng = random.Random(seed)
    invoices = _generate_invoices(rng, count)
    out = []
    for fields, rule in zip(invoices, apply_invoice_policy(invoices), strict=True):
        issued = date(2026, 1, 1) + timedelta(days=rng.randint(0, 300))
        expert_label = _noisy(rng, rule, AP_DECISIONS)[0]
        out.append(
            (
                {**fields, "invoice_date": issued.isoformat()},
                rule.exception,
                list(rule.at_fault),
                rule.label,
                expert_label,
            )
        )
    return out


# --- claims ---------------------------------------------------------------------------------------

CLAIMS_FIELDS = [
    {"name": "claim_type", "type": "category", "choices": ["auto", "property", "travel", "health"],
     "required": True},
    {"name": "policy_number", "type": "text", "required": True},
    {"name": "claimed_amount", "type": "money", "currency": "EUR", "required": True},
    {"name": "incident_date", "type": "date", "required": True},
    {"name": "days_to_report", "type": "number", "help_text": "Days from the incident to the claim."},
    {"name": "prior_claims", "type": "number", "help_text": "Claims in the last three years."},
    {"name": "police_report", "type": "boolean"},
    {"name": "description", "type": "text"},
]  # fmt: skip
CLAIMS_DECISIONS = [
    {"label": "pay", "description": "Pay the claim.", "reason_codes": ["covered", "within_limit"]},
    {"label": "deny", "description": "Deny the claim and explain why.",
     "reason_codes": ["not_covered", "late_notice"]},
    {"label": "investigate", "description": "Refer to the investigations team.",
     "reason_codes": ["suspected_fraud", "high_value"]},
    {"label": "request_documents", "description": "Ask the claimant for the missing documents.",
     "reason_codes": ["missing_report", "missing_receipts"]},
]  # fmt: skip
CLAIMS_RULES = {
    "late": Rule("1", "deny", "late_notice", "Claim reported late", ("days_to_report",),
        "Reported {days_to_report} days after the incident, beyond the 60-day notice period."),
    "frequent": Rule("2", "investigate", "suspected_fraud", "Frequent claimant", ("prior_claims",),
        "{prior_claims} claims in three years: refer to the fraud team."),
    "high_value": Rule("3", "investigate", "high_value", "Claim above the desk limit",
        ("claimed_amount",), "{claimed_amount:,.0f} EUR is above the 25,000 EUR desk limit."),
    "no_report": Rule("4", "request_documents", "missing_report", "Police report missing",
        ("police_report",), "Damage above 2,000 EUR needs a police report."),
    "no_receipts": Rule("5", "request_documents", "missing_receipts", "Receipts missing",
        ("description",), "Travel and health claims above 2,000 EUR need receipts."),
    "fast_track": Rule("6", "pay", "within_limit", "Manual check required", ("claimed_amount",),
        "Small claim, covered: fast-track payment."),
    "covered": Rule("6", "pay", "covered", "Manual check required", ("claimed_amount",),
        "Covered by the policy and documented; pay."),
}  # fmt: skip


def claim_rule(fields: dict) -> Rule:
    """The claims triage policy (module docstring) for one claim."""
    amount = float(fields["claimed_amount"])
    if fields.get("days_to_report", 0) > 60:
        return CLAIMS_RULES["late"]
    if fields.get("prior_claims", 0) >= 3:
        return CLAIMS_RULES["frequent"]
    if amount > 25_000:
        return CLAIMS_RULES["high_value"]
    if amount > 2000:
        damage = fields["claim_type"] in ("auto", "property")
        if damage and not fields.get("police_report"):
            return CLAIMS_RULES["no_report"]
        if not damage and "receipts attached" not in (fields.get("description") or "").lower():
            return CLAIMS_RULES["no_receipts"]
    return CLAIMS_RULES["fast_track" if amount <= 1000 else "covered"]


_CLAIM_STORIES = {
    "auto": ["Rear-end collision at a junction.", "Windscreen cracked by gravel.", "Parked car scraped."],
    "property": ["Water damage from a burst pipe.", "Storm damage to the roof.", "Break-in, door forced."],
    "travel": ["Flight cancelled, hotel booked.", "Luggage lost on transfer.", "Trip cut short by illness."],
    "health": ["Emergency treatment abroad.", "Physiotherapy after a fall.", "Dental emergency."],
}  # fmt: skip


def _generate_claims(rng: random.Random, count: int, today: date) -> list[dict]:
    claims = []
    for number in range(count):
        kind = rng.choice(list(_CLAIM_STORIES))
        incident = today - timedelta(days=rng.randint(3, 150))
        story = rng.choice(_CLAIM_STORIES[kind])
        if kind in ("travel", "health") and rng.random() < 0.6:
            story += " Receipts attached."
        claims.append(
            {
                "claim_type": kind,
                "policy_number": f"POL-{rng.randint(100000, 999999)}-{number % 97:02d}",
                "claimed_amount": round(min(rng.lognormvariate(7.3, 1.3), 90_000.0), 2),
                "incident_date": incident.isoformat(),
                "days_to_report": rng.choice([1, 2, 3, 5, 8, 14, 21, 30, 45, 75, 120]),
                "prior_claims": rng.choices([0, 1, 2, 3, 4], weights=[55, 25, 10, 6, 4])[0],
                "police_report": rng.random() < 0.6,
                "description": story,
            }
        )
    return claims


def synthetic_claims(count: int, *, seed: int, today: date) -> list[dict]:
    """The fields of `count` claims of the demo process (for simulations)."""
    return _generate_claims(random.Random(seed), count, today)


# --- seeding --------------------------------------------------------------------------------------


def _noisy(rng: random.Random, rule: Rule, decisions: list[dict]) -> tuple[str, str, str]:
    """(label, reason code, rationale): the policy's, or with probability NOISE another option."""
    if rng.random() >= NOISE:
        return rule.label, rule.reason_code, rule.rationale
    option = rng.choice([d for d in decisions if d["label"] != rule.label])
    return (
        option["label"],
        rng.choice(option["reason_codes"]),
        f"Judgement call against the usual rule {rule.name}: {option['description']}",
    )


def _create(process: Process, rows: list[dict], created_at: list[datetime]) -> list[Case]:
    cases: list[Case] = []
    for start in range(0, len(rows), BATCH):
        cases += create_cases(process=process, rows=rows[start : start + BATCH], embed=False).cases
    # Intake stamps "now"; the demo history needs cases that arrived over the last months.
    for case, when in zip(cases, created_at, strict=True):
        case.created_at = when
    Case.objects.bulk_update(cases, ["created_at"], batch_size=BATCH)
    # Embedded here rather than by the worker, so precedents work right after `seed_demo`.
    ids = [case.pk for case in cases]
    for start in range(0, len(ids), BATCH):
        embed_cases(case_ids=ids[start : start + BATCH])
    return cases


def _import(process: Process, rows: list[dict]) -> None:
    for start in range(0, len(rows), 10_000):
        import_decisions(process=process, rows=rows[start : start + 10_000])


def _seed_invoices(team: Team, rng: random.Random, now: datetime) -> str:
    process = create_process(
        team=team,
        name="Invoice exceptions",
        slug=AP_SLUG,
        description="Synthetic demo: invoices that failed automatic matching, generated from the "
        "policy documented in apps/cases/demo.py plus 8% noise.",
        fields=AP_FIELDS,
        decisions=AP_DECISIONS,
        minutes_per_case=6,
        overlap=1,
        priority_field="amount",
        is_synthetic=True,
    )
    invoices = _generate_invoices(rng, AP_CASES)
    rules = apply_invoice_policy(invoices)
    decided = set(rng.sample(range(AP_CASES), round(AP_CASES * AP_DECIDED_SHARE)))
    rows, arrivals = [], []
    for index, (fields, rule) in enumerate(zip(invoices, rules, strict=True)):
        # Decided cases arrived over the last 90 days, open ones over the last two weeks.
        days_ago = rng.uniform(1, 90) if index in decided else rng.uniform(0, 14)
        arrived = now - timedelta(days=days_ago)
        issued = arrived.date() - timedelta(days=30 + fields["days_overdue"])
        rows.append(
            {
                "external_id": f"AP-{index + 1:06d}",
                "fields": {**fields, "invoice_date": issued.isoformat()},
                "exception": {"reason": rule.exception, "fields": list(rule.at_fault)},
            }
        )
        arrivals.append(arrived)
    _create(process, rows, arrivals)
    history = []
    for index in sorted(decided):
        label, code, rationale = _noisy(rng, rules[index], AP_DECISIONS)
        history.append(
            {
                "external_id": rows[index]["external_id"],
                "label": label,
                "reason_code": code,
                "rationale": rationale.format(**_context(invoices[index])),
                "expert": rng.choice(["erin", "eli"]),
                "decided_at": _decided_at(rng, arrivals[index], now),
            }
        )
    _import(process, history)
    open_count = len(rows) - len(history)
    return (
        f"{process.name} ({AP_SLUG}): {len(rows):,} synthetic cases, "
        f"{len(history):,} decided, {open_count:,} open"
    )


def _decided_at(rng: random.Random, arrived: datetime, now: datetime) -> str:
    return min(arrived + timedelta(hours=rng.uniform(0.5, 72)), now).isoformat()


def _seed_claims(team: Team, rng: random.Random, now: datetime) -> str:
    process = create_process(
        team=team,
        name="Claims triage",
        slug=CLAIMS_SLUG,
        description="Synthetic demo: claims the intake rules could not settle, two experts each, "
        "generated from the policy documented in apps/cases/demo.py.",
        fields=CLAIMS_FIELDS,
        decisions=CLAIMS_DECISIONS,
        minutes_per_case=12,
        overlap=2,
        priority_field="claimed_amount",
        is_synthetic=True,
    )
    claims = _generate_claims(rng, CLAIMS_CASES, now.date())
    rules = [claim_rule(fields) for fields in claims]
    labelled = rng.sample(range(CLAIMS_CASES), CLAIMS_DECIDED + CLAIMS_DISPUTED)
    disputed = set(labelled[:CLAIMS_DISPUTED])
    rows, arrivals = [], []
    for index, (fields, rule) in enumerate(zip(claims, rules, strict=True)):
        days_ago = rng.uniform(1, 60) if index in labelled else rng.uniform(0, 10)
        rows.append(
            {
                "external_id": f"CLM-{index + 1:05d}",
                "fields": fields,
                "exception": {"reason": rule.exception, "fields": list(rule.at_fault)},
            }
        )
        arrivals.append(now - timedelta(days=days_ago))
    _create(process, rows, arrivals)
    history = []
    for index in sorted(labelled):
        rule = rules[index]
        first = _noisy(rng, rule, CLAIMS_DECISIONS)
        if index in disputed:
            # The second expert reads the claim differently: the case waits for adjudication.
            other = rng.choice([d for d in CLAIMS_DECISIONS if d["label"] != first[0]])
            second = (other["label"], other["reason_codes"][0], "Not convinced; see the file.")
        else:
            second = first
        for expert, (label, code, rationale) in (("erin", first), ("eli", second)):
            history.append(
                {
                    "external_id": rows[index]["external_id"],
                    "label": label,
                    "reason_code": code,
                    "rationale": rationale.format(**claims[index]),
                    "expert": expert,
                    "decided_at": _decided_at(rng, arrivals[index], now),
                }
            )
    _import(process, history)
    open_count = len(rows) - CLAIMS_DECIDED - CLAIMS_DISPUTED
    return (
        f"{process.name} ({CLAIMS_SLUG}): {len(rows):,} synthetic cases, "
        f"{CLAIMS_DECIDED} decided, {CLAIMS_DISPUTED} in adjudication, {open_count} open"
    )


def seed_demo_cases() -> str:
    """Create the demo processes that are missing (each all or nothing); returns a summary line.

    Precondition: the demo organisation exists (teams ap and claims, users erin, eli and maya).
    """
    now = timezone.now()
    lines = []
    for slug, team_slug, seed in (
        (AP_SLUG, "ap", _seed_invoices),
        (CLAIMS_SLUG, "claims", _seed_claims),
    ):
        if Process.objects.filter(slug=slug).exists():
            lines.append(f"Demo process {slug} already present")
            continue
        team = Team.objects.filter(slug=team_slug).first()
        members = set(
            team.memberships.filter(user__username__in=DEMO_EXPERTS[slug]).values_list(
                "user__username", flat=True
            )
            if team
            else []
        )
        if team is None or not members >= DEMO_EXPERTS[slug]:
            lines.append(f"Demo process {slug} skipped: the demo organisation is incomplete")
            continue
        # A fixed seed per process: the same demo every time, whichever process is (re)created.
        with transaction.atomic():
            lines.append(seed(team, random.Random(f"{SEED}-{slug}"), now))
    return "\n".join(lines)
