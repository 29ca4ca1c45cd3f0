"""The API against its own OpenAPI schema: schemathesis sends valid and invalid requests to every
operation of /api/v1 through the real Django app (in-process WSGI: no socket, nothing leaves the
machine), as an admin with a real token and real data, and fails on any 5xx, any status code the
schema doesn't declare for the operation, and any answer that doesn't match its declared schema.

Bounded: a few examples per operation, derandomized (a fixed seed), no example database."""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.cases.models import Case
from orchcap.api import api
from tests.api.conftest import token_client
from tests.factories import make_cases, make_process

MAX_EXAMPLES = 6
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api/v1"))
schema.config.generation.update(max_examples=MAX_EXAMPLES)
app = WSGIHandler()


@pytest.fixture
def persona(admin, team):
    """An admin's token, and the slug and a case of a process with cases in their team."""
    process = make_process(team)
    make_cases(process, 5)
    client = token_client(admin)
    token = client.defaults["HTTP_AUTHORIZATION"]
    # Like Django's test client: a request must not close the test's connection (its transaction).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield {"Authorization": token}, process.slug, Case.objects.filter(process=process).first().pk
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_as_its_schema_says(case, persona):
    headers, slug, case_id = persona
    # Half the generated ids are swapped for real ones, so both "found" and "not found" paths run.
    if "slug" in case.path_parameters:
        case.path_parameters["slug"] = slug
    if isinstance(case.path_parameters.get("case_id"), int) and case.path_parameters["case_id"] % 2:
        case.path_parameters["case_id"] = case_id
    case.call_and_validate(app=app, headers=headers, checks=CHECKS)
