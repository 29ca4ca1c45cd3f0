"""The docs' curl examples run against a live server, and answer as the docs say.

Every ```sh block with a `curl` in docs/*.md carries a marker on the line before it:

    <!-- example: as=maya status=201 answer -->   run it; the next ```json block is its answer
    <!-- example: illustrative -->                 on purpose not run (a placeholder host, say)

`as=` is the persona whose token is `$TOKEN`, `case=EXT` sets `$CASE_ID` to that case's id,
`status=` is the HTTP status it must get, and `answer` compares the documented JSON's shape
(keys, nesting, types) with the real answer's. `$API` is the live server's `/api/v1`.
"""

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from apps.cases.models import Case
from apps.people import services as people
from apps.people.models import Role
from tests.factories import make_member, make_team

DOCS = Path(__file__).resolve().parents[2] / "docs"
# api.md builds the demo-p process the other files' examples use.
ORDER = ["api.md"]
_FENCE = re.compile(r"^([ ]*)```(\w*)\n(.*?)^\1```", re.M | re.S)
_MARKER = re.compile(r"<!--\s*example:\s*(.*?)\s*-->\s*$")


@dataclass
class Example:
    doc: str
    line: int
    script: str
    options: dict[str, str] = field(default_factory=dict)
    answer: object = None

    @property
    def where(self) -> str:
        return f"docs/{self.doc}:{self.line}"


def _marker_before(text: str, start: int) -> str | None:
    lines = text[:start].rstrip("\n ").splitlines()
    if not lines:
        return None
    found = _MARKER.search(lines[-1])
    return found.group(1) if found else None


def examples_in(doc: str) -> tuple[list[Example], list[str]]:
    """(runnable examples in order, curl blocks without a marker)."""
    text = (DOCS / doc).read_text()
    runnable: list[Example] = []
    unmarked: list[str] = []
    waiting: Example | None = None
    for block in _FENCE.finditer(text):
        indent, language, body = block.group(1), block.group(2), block.group(3)
        body = "\n".join(line.removeprefix(indent) for line in body.splitlines())
        line = text[: block.start()].count("\n") + 1
        if language == "json" and waiting is not None:
            waiting.answer = json.loads(body)
            waiting = None
            continue
        if language != "sh" or "curl " not in body:
            continue
        marker = _marker_before(text, block.start())
        if marker is None:
            unmarked.append(f"docs/{doc}:{line}")
            continue
        if marker == "illustrative":
            continue
        words = marker.split()
        options = dict(word.split("=", 1) for word in words if "=" in word)
        example = Example(doc, line, body, options)
        runnable.append(example)
        waiting = example if "answer" in words else None
    return runnable, unmarked


def all_docs() -> list[str]:
    rest = sorted(p.name for p in DOCS.glob("*.md") if p.name not in ORDER)
    return ORDER + rest


def shape_mismatches(documented: object, real: object, where: str = "$") -> list[str]:
    """Where the real JSON's shape differs from the documented one (values may differ)."""
    if documented is None or real is None:
        return []
    if isinstance(documented, dict):
        if not isinstance(real, dict):
            return [f"{where}: documented an object, got {type(real).__name__}"]
        problems = [
            f"{where}.{k}: documented, not in the answer" for k in documented.keys() - real.keys()
        ]
        problems += [
            f"{where}.{k}: in the answer, not documented" for k in real.keys() - documented.keys()
        ]
        for key in documented.keys() & real.keys():
            problems += shape_mismatches(documented[key], real[key], f"{where}.{key}")
        return problems
    if isinstance(documented, list):
        if not isinstance(real, list):
            return [f"{where}: documented a list, got {type(real).__name__}"]
        if not real:
            return []
        return [
            problem
            for index, item in enumerate(documented)
            for problem in shape_mismatches(
                item, real[min(index, len(real) - 1)], f"{where}[{index}]"
            )
        ]
    numbers = (int, float)
    if isinstance(documented, numbers) and not isinstance(documented, bool):
        ok = isinstance(real, numbers) and not isinstance(real, bool)
    else:
        ok = type(documented) is type(real)
    return (
        []
        if ok
        else [f"{where}: documented {type(documented).__name__}, got {type(real).__name__}"]
    )


def run_example(example: Example, *, api: str, tokens: dict[str, str], cwd: Path) -> list[str]:
    env = {"PATH": "/usr/bin:/bin", "API": api, "TOKEN": tokens[example.options.get("as", "maya")]}
    if "case" in example.options:
        env["CASE_ID"] = str(Case.objects.get(external_id=example.options["case"]).pk)
    # Silent curl that prints the status on a last line of its own.
    script = re.sub(r"\bcurl ", "curl -sS -w '\\n%{http_code}' ", example.script, count=1)
    done = subprocess.run(
        ["bash", "-c", script], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        return [f"{example.where}: curl failed: {done.stderr.strip()}"]
    body, _, status = done.stdout.rpartition("\n")
    problems = []
    expected = example.options.get("status")
    if expected and status != expected:
        problems.append(f"{example.where}: status {status}, documented {expected}: {body[:300]}")
    if example.answer is not None:
        try:
            real = json.loads(body)
        except ValueError:
            return [*problems, f"{example.where}: the answer is not JSON: {body[:200]}"]
        problems += [f"{example.where}: {p}" for p in shape_mismatches(example.answer, real)]
    return problems


@pytest.fixture
def personas(db) -> dict[str, str]:
    """The people the docs' examples act as, with a token each."""
    ap, claims = make_team("ap", "Accounts Payable"), make_team("claims", "Claims")
    maya = make_member(ap, Role.MANAGER, "maya")
    people.add_member(team=claims, user=maya, role=Role.MANAGER)
    erin = make_member(ap, Role.EXPERT, "erin")
    ada = make_member(ap, Role.ADMIN, "ada")
    ada.is_superuser = ada.is_staff = True
    ada.save(update_fields=["is_superuser", "is_staff"])
    return {
        user.username: people.create_api_token(user=user, name="docs")[1]
        for user in (maya, erin, ada)
    }


def test_every_curl_example_is_marked_runnable_or_illustrative():
    unmarked = [where for doc in all_docs() for where in examples_in(doc)[1]]
    assert unmarked == [], "curl examples without <!-- example: … -->: " + ", ".join(unmarked)


def test_runnable_examples_answer_as_documented(live_server, personas, tmp_path):
    examples = [example for doc in all_docs() for example in examples_in(doc)[0]]
    assert len(examples) >= 8
    problems = [
        problem
        for example in examples
        for problem in run_example(
            example, api=f"{live_server.url}/api/v1", tokens=personas, cwd=tmp_path
        )
    ]
    assert problems == [], "\n".join(problems)


def test_the_shape_check_sees_a_missing_key_an_extra_key_and_a_wrong_type():
    documented = {"items": [{"id": 1, "label": "a"}], "next": None}
    assert shape_mismatches(documented, {"items": [{"id": 2, "label": "b"}], "next": "x"}) == []
    real = {"items": [{"id": "2", "label": "b", "x": 1}]}
    assert sorted(shape_mismatches(documented, real)) == [
        "$.items[0].id: documented int, got str",
        "$.items[0].x: in the answer, not documented",
        "$.next: documented, not in the answer",
    ]
