"""The docs can't silently fall behind the code: every variable and API operation is documented."""

import re
from pathlib import Path

from orchcap.api import api

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
_READS = re.compile(
    r"(?:env_(?:str|bool|int|list|url|choice)\(|os\.environ\.get\(|os\.environ\[|getenv\(|"
    r"environ\.setdefault\()\s*\"([A-Z_][A-Z0-9_]*)\""
)
# Read by Django or pytest themselves, not settings of ours.
_NOT_SETTINGS = {"DJANGO_SETTINGS_MODULE"}


def variables_read_by_the_code() -> set[str]:
    names: set[str] = set()
    for folder in ("apps", "orchcap"):
        for path in (ROOT / folder).rglob("*.py"):
            names.update(_READS.findall(path.read_text()))
    return names - _NOT_SETTINGS


def test_the_scan_finds_the_variables_it_should():
    # Guards the regular expression: a scan that finds nothing would pass the next test.
    found = variables_read_by_the_code()
    assert {"DEBUG", "DATABASE_URL", "ORCHCAP_HEARTBEAT_SECONDS", "TZ"} <= found


def test_every_environment_variable_the_code_reads_is_in_operations_md():
    operations = (DOCS / "operations.md").read_text()
    missing = sorted(v for v in variables_read_by_the_code() if f"`{v}`" not in operations)
    assert missing == [], f"not documented in docs/operations.md: {', '.join(missing)}"


def test_every_api_operation_is_in_the_docs():
    docs = "\n".join(path.read_text() for path in DOCS.glob("*.md"))
    schema = api.get_openapi_schema(path_prefix="")
    missing = []
    for path, operations in schema["paths"].items():
        # `{slug}` in the schema may be written `{slug}`, `{id}` or an example value in the docs.
        parts = re.split(r"\{[^}]+\}", path)
        pattern = r"(?:\{[^}\s]+\}|[A-Za-z0-9_.<>-]+)".join(re.escape(p) for p in parts)
        for method in operations:
            documented = re.compile(
                rf"{method.upper()}\s+`?(?:/api/v1|\$API|…)?{pattern}(?![A-Za-z0-9_/{{])"
            )
            if not documented.search(docs):
                missing.append(f"{method.upper()} /api/v1{path}")
    assert len(schema["paths"]) > 20
    assert missing == [], "not documented in docs/: " + ", ".join(missing)
