"""`manage.py simulate_source`: the simulated system of record, end to end against a served
orchcap and a real Celery worker delivering its callbacks; its receiver refusing a tampered
message; bad arguments answered with one line and exit 2."""

import base64
import hashlib
import hmac
import io
import json
import time
import urllib.error
import urllib.request

import pytest
from django.core.management import CommandError, call_command

from apps.connectors.models import Connector, Delivery
from apps.connectors.signing import new_secret, signature_header
from apps.orchestrations.models import Run
from apps.orchestrations.services import change_stage, create_version
from apps.orchestrations.simulator import CallbackReceiver, item_fields, verify_webhook
from apps.people.services import create_api_token
from apps.rules.models import Rule
from tests.processes import child_database_url, free_port, run_manage, start_worker, stop_process


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _signed(secret: str, body: bytes, msg_id: str = "msg_1") -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(
            secrets_=[secret], webhook_id=msg_id, timestamp=timestamp, body=body
        ),
        "Content-Type": "application/json",
    }


def test_the_receiver_accepts_a_signed_callback_and_refuses_a_tampered_one():
    secret = new_secret()
    receiver = CallbackReceiver(port=free_port(), secrets=lambda: [secret]).start()
    try:
        body = json.dumps({"type": "item.decided", "data": {"external_id": "A-1"}}).encode()
        headers = _signed(secret, body)

        good = _post(receiver.url, body, headers)
        again = _post(receiver.url, body, headers)  # the same webhook-id: at least once
        tampered = _post(receiver.url, body.replace(b"A-1", b"A-2"), headers)
        other_key = _post(receiver.url, body, _signed(new_secret(), body, "msg_2"))
        unsigned = _post(receiver.url, body, {"Content-Type": "application/json"})
    finally:
        receiver.stop()

    assert (good, again) == (200, 200)
    assert (tampered, other_key, unsigned) == (401, 401, 401)
    assert receiver.refused == 3
    first, second = receiver.messages.get_nowait(), receiver.messages.get_nowait()
    assert first.data == {"external_id": "A-1"}
    assert (first.duplicate, second.duplicate) == (False, True)
    assert receiver.messages.empty()


def test_verification_follows_the_spec_and_refuses_an_old_timestamp():
    secret = new_secret()
    body = b'{"type":"item.routed"}'
    old = int(time.time()) - 600
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"msg_9.{old}.".encode() + body, hashlib.sha256).digest()
    headers = {
        "webhook-id": "msg_9",
        "webhook-timestamp": str(old),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }

    assert verify_webhook(secret=secret, headers=headers, body=body, tolerance=900)
    assert not verify_webhook(secret=secret, headers=headers, body=body)  # 5 minutes by default
    # Rotation: any of several signatures may match.
    rotated = {**headers, "webhook-signature": "v1,bm9wZQ== " + headers["webhook-signature"]}
    assert verify_webhook(secret=secret, headers=rotated, body=body, tolerance=900)


def test_items_are_drawn_from_the_schema_and_pass_its_validation(process):
    from apps.cases.schema import validate_case_fields

    api_process = {"slug": process.slug, "fields": process.schema.fields}
    drawn = item_fields(process=api_process, seed=7)
    samples = [next(drawn) for _ in range(50)]

    for fields in samples:
        _, errors = validate_case_fields(process.schema.fields, fields)
        assert errors == {}
    assert len({f["po_status"] for f in samples if "po_status" in f}) > 1


def test_the_demo_processes_use_the_demo_generators():
    from apps.cases import demo

    invoices = item_fields(process={"slug": demo.AP_SLUG, "fields": []}, seed=1)
    claims = item_fields(process={"slug": demo.CLAIMS_SLUG, "fields": []}, seed=1)

    assert next(invoices)["vendor"] in demo.VENDORS
    assert next(claims)["claim_type"] in ("auto", "property", "travel", "health")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--orchestration", "x", "--rate", "0"], "--rate"),
        (["--orchestration", "x", "--port", "80"], "--port"),
        (["--orchestration", "x", "--count", "0"], "--count"),
        (["--orchestration", "x", "--base-url", "ftp://h"], "--base-url"),
        (["--rate", "5"], "--orchestration"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, message):
    with pytest.raises(CommandError, match=message) as refused:
        call_command("simulate_source", *args, stdout=io.StringIO())
    assert refused.value.returncode == 2 or message == "--orchestration"


def test_bad_arguments_print_one_line_from_the_command_line():
    result = run_manage("simulate_source", "--orchestration", "x", "--rate", "-1", timeout=60)

    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "--rate" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_an_unknown_orchestration_or_a_refused_token_is_one_line(live_server, manager):
    _, raw = create_api_token(user=manager, name="t")
    out = io.StringIO()

    with pytest.raises(CommandError, match="not found") as unknown:
        call_command("simulate_source", "--orchestration", "nope", "--base-url",
                     live_server.url, "--token", raw, stdout=out)  # fmt: skip
    with pytest.raises(CommandError, match="token was refused"):
        call_command("simulate_source", "--orchestration", "nope", "--base-url",
                     live_server.url, "--token", "oc_wrong", stdout=out)  # fmt: skip

    assert unknown.value.returncode == 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_loop_end_to_end_every_callback_verified(
    live_server, manager, orchestration, rule, settings
):
    settings.ORCHCAP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    Rule.objects.filter(pk=rule.pk).update(enabled=True)
    version = create_version(
        orchestration=orchestration, actor=manager,
        values={"rules": [{"rule": rule.pk}],
                "exception_filter": {"field": "amount", "op": "gt", "value": 1500},
                "sla_minutes": 60},
    )  # fmt: skip
    change_stage(version=version, stage="live", actor=manager)
    _, token = create_api_token(user=manager, name="simulator")
    worker = start_worker(
        DATABASE_URL=child_database_url(), ORCHCAP_WEBHOOK_ALLOWED_HOSTS="127.0.0.1"
    )
    out = io.StringIO()
    try:
        call_command(
            "simulate_source", "--orchestration", orchestration.slug, "--rate", "10",
            "--count", "12", "--port", str(free_port()), "--base-url", live_server.url,
            "--token", token, "--wait", "90", "--seed", "3", "--prefix", "SIM",
            stdout=out,
        )  # fmt: skip
    except CommandError as exc:
        pytest.fail(f"{exc}\n{out.getvalue()}\n{stop_process(worker)}")
    finally:
        output = stop_process(worker)
    printed = out.getvalue()

    runs = list(Run.objects.filter(orchestration=orchestration).order_by("external_id"))
    assert len(runs) == 12, printed
    answered = [r for r in runs if r.outcome in ("decided", "routed")]
    standard = [r for r in runs if r.outcome == "standard"]
    assert answered, printed  # the seed gives a mix: decided, routed and standard
    assert standard, printed
    assert {r.outcome for r in answered} == {"decided", "routed"}, printed
    # One verified callback line per decided or routed item, none for the standard ones.
    for run in answered:
        [line] = [ln for ln in printed.splitlines() if ln.startswith(f"{run.external_id}  ")]
        assert "signature ok" in line, printed
        assert run.outcome in line
        if run.label:
            assert f"label={run.label}" in line
    for run in standard:
        assert f"{run.external_id}  standard" in printed
    assert f"{len(answered)} callbacks verified" in printed, printed
    assert "0 refused" in printed
    # The connector the simulator made is the runs' callback; each delivery went once.
    connector = Connector.objects.get(name="simulate_source")
    assert all(r.callback_id == connector.pk for r in runs)
    deliveries = Delivery.objects.filter(connector=connector)
    assert deliveries.count() == len(answered), output
    assert set(deliveries.values_list("state", flat=True)) == {"delivered"}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_demo_path_reuses_the_connector_and_the_owners_token(
    live_server, manager, orchestration, rule, settings
):
    """As a newcomer runs it on the demo: the connector for its port exists (here disabled), no
    --token: the owner's token is made and revoked, the secret rotated, the connector enabled."""
    from apps.connectors.services.connectors import create_connector, update_connector
    from apps.people.models import ApiToken

    settings.ORCHCAP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    Rule.objects.filter(pk=rule.pk).update(enabled=True)
    version = create_version(
        orchestration=orchestration, actor=manager, values={"rules": [{"rule": rule.pk}]}
    )
    change_stage(version=version, stage="live", actor=manager)
    port = free_port()
    connector = create_connector(
        team=orchestration.team, name="ERP (simulated)",
        url=f"http://127.0.0.1:{port}/orchcap/callbacks", event_types=["item.decided"],
        owner=manager,
    )  # fmt: skip
    update_connector(connector=connector, values={"enabled": False})
    old_secret = connector.secret
    worker = start_worker(
        DATABASE_URL=child_database_url(), ORCHCAP_WEBHOOK_ALLOWED_HOSTS="127.0.0.1"
    )
    out = io.StringIO()
    try:
        call_command(
            "simulate_source", "--orchestration", orchestration.slug, "--rate", "10",
            "--count", "4", "--port", str(port), "--base-url", live_server.url, "--wait", "90",
            "--seed", "5", stdout=out,
        )  # fmt: skip
    except CommandError as exc:
        pytest.fail(f"{exc}\n{out.getvalue()}\n{stop_process(worker)}")
    finally:
        stop_process(worker)
    printed = out.getvalue()

    connector.refresh_from_db()
    assert connector.enabled
    assert connector.secret != old_secret  # rotated to learn it
    assert Connector.objects.count() == 1  # reused, not a second one
    assert "no --token: using a token of the orchestration's owner" in printed
    [token] = ApiToken.objects.filter(user=manager)
    assert token.revoked_at is not None
    # It subscribed to item.decided only: the simulator added item.routed, so every decided or
    # routed item came back.
    assert {"item.decided", "item.routed"} <= set(connector.event_types)
    answered = Run.objects.filter(orchestration=orchestration, outcome__in=["decided", "routed"])
    assert answered.count() > 0
    assert f"{answered.count()} callbacks verified" in printed, printed
