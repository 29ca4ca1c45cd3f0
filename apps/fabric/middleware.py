"""The heartbeat's fast path: the common heartbeat answered before the rest of the stack runs.

At the default 5 s interval 1,000 nodes send 200 heartbeats/s. Most are the same: an online
node whose worker consumes, holding no work, reporting its load. This middleware, placed right
after SecurityMiddleware, answers exactly those with one UPDATE (services/heartbeats.py,
record_steady_heartbeat) and skips sessions, CSRF, users, messages, URL resolution and ninja,
none of which a node's credential needs. Anything else (another path, a body it doesn't fully
understand, a refused credential, a state change, leases to renew) goes on down the stack to
the documented API operation, which answers it as before: the fast path never answers an error
itself, except a 500 the way the API does.
"""

import json
import math
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from apps.core.api import NUL, declared_length, internal_error
from apps.fabric.services import heartbeats

Handler = Callable[[HttpRequest], HttpResponse]

# Keys of HeartbeatIn the fast path takes as they come; any other key sends the beat down.
_FIGURES = ("cpu_percent", "memory_percent", "load_average", "idle_seconds")
_KNOWN = {*_FIGURES, "status", "running_tasks", "tasks", "detected", "software_version", "worker"}


def _number(value: object) -> bool:
    # A float the column can hold; an int beyond 2**53 (JSON allows 400 digits) would overflow
    # float() later: the API decides what such a body gets.
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= 2**53


def steady_fields(body: object) -> dict[str, Any] | None:
    """The arguments of record_steady_heartbeat when this body is a steady heartbeat that
    HeartbeatIn would accept as it is; None for anything else (the full path decides)."""
    if not isinstance(body, dict) or not body.keys() <= _KNOWN:
        return None
    if body.get("status", "running") != "running" or body.get("worker") not in (None, "ready"):
        return None
    tasks, detected = body.get("tasks"), body.get("detected")
    if tasks not in (None, []) or detected not in (None, {}):
        return None
    running = body.get("running_tasks", 0)
    if not isinstance(running, int) or isinstance(running, bool) or running < 0:
        return None
    version = body.get("software_version")
    if version is not None and (
        not isinstance(version, str) or len(version) > 40 or NUL in version
    ):
        return None
    fields: dict[str, Any] = {
        "running_tasks": running,
        "software_version": version,
        "tasks_reported": tasks is not None,
    }
    for name in _FIGURES:
        value = body.get(name)
        if value is not None and not _number(value):
            return None
        fields[name] = value
    if fields["idle_seconds"] is not None and fields["idle_seconds"] < 0:
        return None
    return fields


def node_credential(request: HttpRequest) -> tuple[int, str] | None:
    """(node id, secret) from `Authorization: Node <id>:<secret>`, as NodeAuth reads it."""
    # META, not request.headers: that builds a dict of every header first.
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "node":
        return None
    node_id, _, secret = value.strip().partition(":")
    if not node_id.isdigit() or not secret:
        return None
    return int(node_id), secret


class HeartbeatFastPathMiddleware:
    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response
        self._path: str | None = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.method != "POST"
            or not settings.ORCHCAP_FABRIC_HEARTBEAT_FAST_PATH
            or request.path != self._heartbeat_path()
        ):
            return self.get_response(request)
        fields = self._steady(request)
        if fields is None:
            return self.get_response(request)
        try:
            reply = heartbeats.record_steady_heartbeat(**fields)
        except Exception as exc:  # as the API answers one: JSON with an id, the traceback logged
            return internal_error(request, exc)
        if reply is None:
            return self.get_response(request)
        body = {**reply.__dict__, "queues": list(reply.queues)}
        return HttpResponse(json.dumps(body), content_type="application/json")

    def _heartbeat_path(self) -> str:
        # Resolved on first use (the URLconf isn't loaded yet when middleware is built).
        if self._path is None:
            self._path = reverse("api:heartbeat")
        return self._path

    @staticmethod
    def _steady(request: HttpRequest) -> dict[str, Any] | None:
        credential = node_credential(request)
        if credential is None or request.content_type != "application/json":
            return None
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and declared_length(request) > limit:
            return None  # the API answers 413
        try:
            fields = steady_fields(json.loads(request.body))
        except (ValueError, RecursionError):  # not JSON, or absurdly nested: the API answers 400
            return None
        if fields is None:
            return None
        node_id, secret = credential
        return {**fields, "node_id": node_id, "secret": secret}
