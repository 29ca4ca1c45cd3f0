"""Rule drafts by a chat model: from a group of experts' rationales to a rule for an expert to check.

Off unless ORCHCAP_CHAT_MODEL is set. Its value is either a LangChain model name for
`init_chat_model` (e.g. "ollama:llama3.1"; needs the `llm` extra: pip install 'orchcap[llm]'), or
"package.module:factory", a callable returning a LangChain chat model (how tests plug in
langchain-core's fake chat model). A draft is never saved here: it is validated with the rule
language and handed to the builder, where an expert checks and saves it.
"""

import importlib
import json
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError

from apps.cases.models import Decision, Process
from apps.cases.selectors import AnyUser, visible_decisions
from apps.rules.language import EXCEPTION_FIELDS, EXCEPTION_REASON, OPS_BY_TYPE
from apps.rules.services.authoring import check_rule

OFF_MESSAGE = "Rule drafts by a chat model are off: set ORCHCAP_CHAT_MODEL"
MAX_RATIONALES = 20
MAX_REPLY_SHOWN = 4000


class DraftingOff(Exception):
    """No chat model is configured (409)."""

    def __init__(self) -> None:
        super().__init__(OFF_MESSAGE)


class DraftFailed(Exception):
    """The model could not be reached, or its reply is not a valid rule. `reply` is what it said."""

    def __init__(self, message: str, reply: str = "") -> None:
        super().__init__(message)
        self.reply = reply[:MAX_REPLY_SHOWN]


@dataclass(frozen=True)
class Draft:
    condition: dict
    action: dict
    sentence: str
    model: str
    provenance: dict
    reply: str


def chat_model_name() -> str:
    return settings.ORCHCAP_CHAT_MODEL


def chat_model():  # type: ignore[no-untyped-def]  # -> a LangChain BaseChatModel
    """The configured chat model, or None when drafting is off. Raises DraftFailed when the setting
    names something that cannot be loaded."""
    name = chat_model_name()
    if not name:
        return None
    module, colon, attribute = name.partition(":")
    if colon and "." in module:  # "package.module:factory" (providers never contain a dot)
        try:
            factory = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as exc:
            raise DraftFailed(f"ORCHCAP_CHAT_MODEL={name}: cannot import it ({exc})") from None
        return factory()
    try:
        from langchain.chat_models import init_chat_model
    except ImportError:
        raise DraftFailed(
            f"ORCHCAP_CHAT_MODEL={name} needs LangChain's init_chat_model, which is not "
            "installed: pip install 'orchcap[llm]'"
        ) from None
    try:
        return init_chat_model(name)
    except (ImportError, ValueError) as exc:
        raise DraftFailed(f"ORCHCAP_CHAT_MODEL={name}: {exc}") from None


def _schema_text(process: Process) -> str:
    schema = process.schema
    lines = ["Fields (name: type, choices):"]
    for spec in schema.fields:
        choices = f", one of {', '.join(spec['choices'])}" if spec.get("choices") else ""
        label = f" — {spec['label']}" if spec.get("label") else ""
        lines.append(f"- {spec['name']}: {spec['type']}{choices}{label}")
    lines.append(f"- {EXCEPTION_REASON}: text (why the case was raised)")
    lines.append(f"- {EXCEPTION_FIELDS}: the names of the fields at fault (ops contains, is_null)")
    lines.append("Operators by type:")
    lines += [f"- {kind}: {', '.join(ops)}" for kind, ops in OPS_BY_TYPE.items()]
    lines.append("Decisions (label: reason codes):")
    for option in schema.decisions:
        codes = ", ".join(option.get("reason_codes") or []) or "none"
        lines.append(f"- {option['label']}: {codes}")
    return "\n".join(lines)


_INSTRUCTIONS = """You turn experts' reasons into one business rule for a case-review process.
Reply with only a JSON object {"condition": ..., "action": ...} and no other text.
A condition is {"all": [conditions]}, {"any": [conditions]}, {"not": condition} or a comparison
{"field": name, "op": operator, "value": value}. Numbers are JSON numbers, dates "YYYY-MM-DD",
"between" takes [low, high], "in" and "not_in" take a list, "is_null" takes no value.
The action is {"decide": label, "reason_code": code}. Use only the fields, operators, choices,
labels and reason codes listed below.
"""


def _rationales(process: Process, label: str, case_ids: list[int], viewer: AnyUser) -> list[str]:
    if label not in process.schema.labels:
        raise ValidationError(
            f"label: unknown decision {label!r}; use one of {', '.join(process.schema.labels)}"
        )
    chosen = Decision.objects.filter(
        case__process=process, case_id__in=case_ids, label=label, retracted_at__isnull=True
    )
    # Blind rule: neither the model's input nor the "no rationale" answer may tell the viewer
    # what another expert put on an open case they haven't labelled.
    texts = list(
        visible_decisions(user=viewer, process=process, decisions=chosen)
        .exclude(rationale="")
        .order_by("case_id", "decided_at")
        .values_list("rationale", flat=True)[:MAX_RATIONALES]
    )
    if not texts:
        raise ValidationError(f"cases: none of these cases has a rationale for {label}")
    return texts


def _reply_text(message: object) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part if isinstance(part, str) else str(part.get("text", ""))
            for part in content
            if isinstance(part, str | dict)
        )
    return str(content)


def parse_reply(process: Process, reply: str) -> tuple[dict, dict, str]:
    """(condition, action, sentence) from a model's reply; DraftFailed saying what is wrong."""
    text = reply.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    if fenced:
        text = fenced.group(1)
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise DraftFailed("the reply holds no JSON object", reply)
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise DraftFailed(
            f"the reply is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            reply,
        ) from None
    if not isinstance(data, dict) or "condition" not in data or "action" not in data:
        raise DraftFailed('the reply is not an object with "condition" and "action"', reply)
    try:
        sentence = check_rule(process, data["condition"], data["action"])
    except ValidationError as exc:
        raise DraftFailed(
            f"the drafted rule is not valid: {' '.join(exc.messages)}", reply
        ) from None
    return data["condition"], data["action"], sentence


def draft_rule(
    *,
    process: Process,
    label: str,
    case_ids: list[int],
    viewer: AnyUser,
    terms: list[str] | None = None,
    model: object = None,
) -> Draft:
    """Ask the chat model (`model`, else the configured one) for a rule deciding `label`, from
    those cases' rationales for it that `viewer` may see (the blind rule). Raises DraftingOff without a model, ValidationError for bad
    input, DraftFailed when the model fails or its reply is not a valid rule. Nothing is saved."""
    model = model if model is not None else chat_model()
    if model is None:
        raise DraftingOff
    from langchain_core.messages import HumanMessage, SystemMessage

    texts = _rationales(process, label, case_ids, viewer)
    question = (
        f"Experts decided {label!r} on these cases, giving these reasons:\n"
        + "\n".join(f"- {text}" for text in texts)
        + f"\nDraft a rule that says when to decide {label!r}."
    )
    try:
        message = model.invoke(  # type: ignore[attr-defined]
            [SystemMessage(_INSTRUCTIONS + "\n" + _schema_text(process)), HumanMessage(question)]
        )
    except Exception as exc:  # any failure of the model's client is reported as it is
        raise DraftFailed(f"the chat model failed: {exc}") from None
    reply = _reply_text(message)
    condition, action, sentence = parse_reply(process, reply)
    name = chat_model_name()
    group = f"“{', '.join(terms)}”" if terms else f"of {len(texts)} rationales"
    return Draft(
        condition=condition,
        action=action,
        sentence=sentence,
        model=name,
        provenance={
            "source": "chat-draft",
            "model": name,
            "label": label,
            "cases": sorted(set(case_ids)),
            "terms": list(terms or []),
            "note": f"drafted by chat model {name} from rationale group {group} ({label})",
        },
        reply=reply,
    )
