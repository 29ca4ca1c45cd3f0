"""The suggestion panel of the review pane: why the model and the rules would decide a case so.

Registered as a case panel (apps.core.registry) from ClassifiersConfig.ready(), so cases shows it
without importing classifiers or rules. It never shows experts' labels: only the promoted model's
suggestion (withheld on an open case whose earlier label the model learnt, for whoever may not
see that label), the fields that drove it, and the enabled rules that fire on the case.
"""

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count
from django.urls import reverse

from apps.cases.models import Case, CaseStatus
from apps.cases.selectors import may_see_labels
from apps.classifiers import gates, selectors, services
from apps.classifiers.models import ModelVersion
from apps.classifiers.services import ArtifactTampered
from apps.classifiers.types import EXCEPTION_REASON
from apps.rules.language.describe import describe_action_html, describe_rule_html
from apps.rules.services.evaluation import matching_rules

log = logging.getLogger(__name__)
TEMPLATE = "classifiers/suggestion_panel.html"


def _field_labels(case: Case) -> dict[str, str]:
    labels = {EXCEPTION_REASON: "Exception reason"}
    for specs in (case.process.schema.fields, case.schema_version.fields):
        for spec in specs:
            labels[spec["name"]] = spec.get("label") or spec["name"].replace("_", " ").capitalize()
    return labels


def _rules(case: Case) -> tuple[list[dict[str, object]], str]:
    try:
        hits = matching_rules(case=case)
    except Exception as exc:  # e.g. a rule on a field the schema dropped
        log.warning("rules could not be evaluated on case %s: %s", case.pk, exc)
        return [], "The rules could not be evaluated on this case; check them on the rules page."
    return [
        {
            "name": rule.name,
            # In the schema's current words, field names and raw codes as tooltips.
            "sentence": describe_rule_html(
                rule.current.condition,
                rule.current.action,
                fields=case.process.schema.fields,
                fallback=rule.current.sentence,
            ),
            "action": describe_action_html(rule.current.action),
            "winner": index == 0,  # first match by priority decides (DMN "first")
        }
        for index, rule in enumerate(hits)
    ], ""


def _usual_reason(case: Case, label: str) -> str:
    """The reason code the process's decided cases most often carry with `label` ("" for none):
    the model predicts a decision only, so `a` in the review pane takes this code with it."""
    codes = case.process.schema.reason_codes(label)
    if not codes:
        return ""
    usual = (
        Case.objects.filter(process=case.process, final_label=label, final_reason_code__in=codes)
        .values("final_reason_code")
        .annotate(n=Count("id"))
        .order_by("-n", "final_reason_code")
        .first()
    )
    return usual["final_reason_code"] if usual else ""


def _suggestion(case: Case, version: ModelVersion) -> dict[str, object]:
    try:
        suggestion = services.suggest(case=case)
    except ArtifactTampered:
        log.error("model v%s of %s is tampered", version.version, case.process.slug)
        return {
            "model_error": f"The model (version {version.version}) could not be loaded: its "
            "stored file does not match its checksum. No suggestion; a manager can roll back "
            "or retrain."
        }
    except Exception:
        log.exception("model suggestion failed on case %s", case.pk)
        return {
            "model_error": f"The model (version {version.version}) could not be loaded, so there "
            "is no suggestion for this case."
        }
    if suggestion is None:  # demoted between the two reads
        return {
            "no_suggestion": "No suggestion for this case: the promoted model was withdrawn "
            "while the page loaded. Reload to see the current state."
        }
    prediction = suggestion.prediction
    options = [option["label"] for option in case.process.schema.decisions]
    labels = _field_labels(case)
    metrics = suggestion.version.metrics or {}
    others = sorted(
        ((label, p) for label, p in prediction.probabilities.items() if label != prediction.label),
        key=lambda item: item[1],
        reverse=True,
    )
    return {
        "suggestion": {
            "label": prediction.label,
            "percent": round(100 * prediction.confidence),
            "key": options.index(prediction.label) + 1 if prediction.label in options else None,
            "reason_code": _usual_reason(case, prediction.label),
            "runner_up": (
                {"label": others[0][0], "percent": round(100 * others[0][1])} if others else None
            ),
        },
        "contributions": [
            {"field": labels.get(c.source, c.source), "points": round(100 * c.effect)}
            for c in suggestion.contributions
        ],
        "calibration_error": (
            round(100 * metrics["calibration_error"]) if "calibration_error" in metrics else None
        ),
        "held_out_accuracy": (round(100 * metrics["accuracy"]) if "accuracy" in metrics else None),
    }


WITHHELD = (
    "No model suggestion: the model learnt from this case's earlier label, so its suggestion "
    "would give away a label you may not see yet."
)


def _learnt_a_hidden_label(case: Case, version: ModelVersion, user: AbstractBaseUser) -> bool:
    """Whether `version` was trained on a label of this open case that `user` may not see (a case
    reopened for a second look keeps its first label): its suggestion would echo that label."""
    if case.status != CaseStatus.OPEN or not case.label_count:
        return False
    if may_see_labels(user=user, case=case):
        return False
    return case.pk in services.snapshot_ids(version)


def suggestion_panel(case: Case, user: AbstractBaseUser) -> dict[str, object] | None:
    """The panel's context: the promoted model's suggestion (or why there is none) and the rules
    that fire; None when the process has neither a promoted model nor a rule firing."""
    process = case.process
    version = services.promoted_version(process=process)
    rules, rules_error = _rules(case)
    if version is None and not rules and not rules_error:
        return None
    context: dict[str, object] = {
        "version": version,
        "rules": rules,
        "rules_error": rules_error,
        "held_back": None,
    }
    if version is None:
        # Say where models are made, to those who may open that page.
        context["models_url"] = (
            reverse("model_list", args=[process.slug])
            if selectors.can_train(user=user, process=process)
            else ""
        )
        return context
    held_back = gates.suggestions_held_back(process=process)
    if held_back is not None:
        context["held_back"] = held_back
        context["autonomy_url"] = (
            reverse("autonomy_process", args=[process.slug])
            if gates.may_view_autonomy(user=user, process=process)
            else ""
        )
    elif _learnt_a_hidden_label(case, version, user):
        context["model_withheld"] = WITHHELD
    else:
        context.update(_suggestion(case, version))
    return context
