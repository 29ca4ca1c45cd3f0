import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from apps.core.api import MAX_JSON_DEPTH

# A framework of a hundred skills exports to about 100 kB; this leaves room and bounds the parse.
MAX_BYTES = 2_000_000


def _depth(value: Any) -> int:
    depth, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        depth = max(depth, level)
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return depth


class FrameworkImportForm(forms.Form):
    file = forms.FileField(
        required=False, label="A JSON file", help_text="As exported by “Export as JSON”."
    )
    text = forms.CharField(
        required=False,
        label="Or paste the JSON",
        widget=forms.Textarea(attrs={"rows": 8, "class": "mono", "spellcheck": "false"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload, text = data.get("file"), data.get("text") or ""
        if upload is not None:
            if upload.size > MAX_BYTES:
                raise ValidationError(f"The file is over {MAX_BYTES // 1_000_000} MB.")
            raw = upload.read()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ValidationError("The file is not UTF-8 text.") from None
        if not text.strip():
            raise ValidationError("Choose a file or paste the framework's JSON.")
        if len(text) > MAX_BYTES:
            raise ValidationError(f"The JSON is over {MAX_BYTES // 1_000_000} MB.")
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise ValidationError(f"This is not JSON: {exc}.") from None
        except RecursionError:
            raise ValidationError("The JSON is nested too deeply.") from None
        if _depth(document) > MAX_JSON_DEPTH:
            raise ValidationError("The JSON is nested too deeply.")
        data["document"] = document
        return data
