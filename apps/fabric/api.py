"""Fabric API: agents enrol, heartbeat, report results, fetch and upload artefacts, and let the
owner at the machine reclaim it (node credential); admins list nodes, send tasks and read them
(API token or session)."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Router, Status
from ninja.errors import HttpError
from ninja.security.base import AuthBase

from apps.core.api import read_raw_body, validation_errors
from apps.fabric import payloads, selectors
from apps.fabric.errors import EnrollmentRefused, NodeConflict, NodeRefused
from apps.fabric.models import ComputeNode, FabricTask
from apps.fabric.schemas import (
    ArtifactOut,
    AttemptOut,
    ClaimIn,
    ClaimOut,
    EnrollIn,
    EnrollOut,
    ErrorOut,
    HeartbeatIn,
    HeartbeatOut,
    NodeOut,
    NodeRefOut,
    NodeSelfOut,
    ResultIn,
    ResultOutcomeOut,
    ResultsIn,
    ResultsOut,
    TaskIn,
    TaskOut,
)
from apps.fabric.services import (
    artifacts,
    dispatch,
    enrollment,
    heartbeats,
    nodes,
    pull,
    results,
)

router = Router(tags=["fabric"])
_ERRORS = {401: ErrorOut, 403: ErrorOut, 410: ErrorOut, 422: ErrorOut}


class NodeAuth(AuthBase):
    """`Authorization: Node <node id>:<credential>`; the node becomes `request.auth`.

    A wrong id or secret is 401; a right one that was revoked or retired is 403 with the reason,
    so the agent can tell the owner to enrol again instead of retrying forever.
    """

    openapi_type = "apiKey"
    openapi_in = "header"
    openapi_name = "Authorization"
    openapi_description = "`Node <node id>:<node credential>`, as stored by orchcap-agent."

    def __call__(self, request: HttpRequest) -> ComputeNode | None:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "node":
            return None
        node_id, _, secret = value.strip().partition(":")
        if not node_id.isdigit() or not secret:
            return None
        try:
            return enrollment.authenticate_node(node_id=int(node_id), secret=secret)
        except NodeRefused as exc:
            raise HttpError(403, str(exc)) from None


node_auth = NodeAuth()


def _require_admin(request: HttpRequest) -> None:
    if not selectors.can_manage_fabric(user=request.user):
        raise HttpError(403, "Only organisation admins manage the compute fabric.")


@router.post(
    "/fabric/enroll",
    auth=None,
    response={201: EnrollOut, **_ERRORS},
    summary="Enrol a machine with a single-use enrolment token (used by orchcap-agent)",
)
@validation_errors
def enroll(request: HttpRequest, payload: EnrollIn) -> Status | JsonResponse:
    try:
        result = enrollment.enroll_node(
            raw_token=payload.token,
            name=payload.name,
            detected=payload.capabilities.detected,
            declared=payload.capabilities.declared,
            labels=payload.labels,
            data_sources=payload.data_sources,
            fingerprint=payload.fingerprint,
            software_version=payload.software_version,
            node_timezone=payload.timezone,
            node_class=payload.node_class,
            max_concurrent_tasks=payload.max_concurrent_tasks,
        )
    except EnrollmentRefused as exc:
        return JsonResponse({"detail": exc.reason}, status=exc.status)
    return Status(
        201,
        EnrollOut(
            node_id=result.node.pk,
            credential=result.credential,
            state=result.node.state,
            heartbeat_seconds=enrollment.heartbeat_seconds(),
        ),
    )


@router.post(
    "/fabric/heartbeat",
    auth=node_auth,
    response={200: HeartbeatOut, **_ERRORS},
    summary="A node's heartbeat: load and status in, state and whether to take work out",
)
@validation_errors
def heartbeat(request: HttpRequest, payload: HeartbeatIn) -> HeartbeatOut:
    try:
        reply = heartbeats.record_heartbeat(
            node=request.auth,
            status=payload.status,
            cpu_percent=payload.cpu_percent,
            memory_percent=payload.memory_percent,
            load_average=payload.load_average,
            running_tasks=payload.running_tasks,
            idle_seconds=payload.idle_seconds,
            detected=payload.detected,
            software_version=payload.software_version,
            tasks=None
            if payload.tasks is None
            else [(t.task, t.attempt, t.token) for t in payload.tasks],
            worker=payload.worker,
        )
    except NodeRefused as exc:
        raise HttpError(403, str(exc)) from None
    return HeartbeatOut(**{**reply.__dict__, "queues": list(reply.queues)})


@router.get(
    "/fabric/node",
    auth=node_auth,
    response={200: NodeSelfOut, **_ERRORS},
    summary="The calling node's own state (used by `orchcap-agent status`)",
)
def node_self(request: HttpRequest) -> NodeSelfOut:
    return _self_out(request.auth)


def _self_out(node: ComputeNode) -> NodeSelfOut:
    # The same answer a heartbeat gets (slots, broker, queues), plus what `status` prints.
    reply = heartbeats.node_reply(node=node)
    return NodeSelfOut(
        **{**reply.__dict__, "queues": list(reply.queues)},
        name=node.name,
        availability=selectors.describe_availability(node=node),
        labels=node.labels,
    )


@router.post(
    "/fabric/node/reclaim",
    auth=node_auth,
    response={200: NodeSelfOut, **_ERRORS, 409: ErrorOut},
    summary="The owner at the machine reclaims it: no new work until released "
    "(`orchcap-agent reclaim`); 409 when it already is",
)
def node_reclaim(request: HttpRequest) -> NodeSelfOut:
    # Only the owner holds the node's credential on their machine: the switch needs no user.
    try:
        node = nodes.reclaim_node(node=request.auth, actor=None)
    except NodeConflict as exc:
        raise HttpError(409, str(exc)) from None
    return _self_out(node)


@router.post(
    "/fabric/node/release",
    auth=node_auth,
    response={200: NodeSelfOut, **_ERRORS, 409: ErrorOut},
    summary="The owner at the machine releases it back to its usual hours "
    "(`orchcap-agent release`); 409 when it isn't reclaimed",
)
def node_release(request: HttpRequest) -> NodeSelfOut:
    try:
        node = nodes.release_node(node=request.auth, actor=None)
    except NodeConflict as exc:
        raise HttpError(409, str(exc)) from None
    return _self_out(node)


def node_out(node: ComputeNode) -> NodeOut:
    decision = selectors.work_decision(node=node, now=timezone.now())
    return NodeOut(
        id=node.pk,
        name=node.name,
        node_class=node.node_class,
        state=node.state,
        owner=node.owner.username if node.owner else None,
        team=node.team.slug if node.team else None,
        purpose=node.purpose,
        approved=node.is_approved,
        revoked=node.is_revoked,
        detected=node.detected,
        declared=node.declared,
        labels=node.labels,
        data_sources=node.data_sources,
        max_concurrent_tasks=node.max_concurrent_tasks,
        running_tasks=node.running_tasks,
        cpu_percent=node.cpu_percent,
        memory_percent=node.memory_percent,
        idle_seconds=node.idle_seconds,
        last_heartbeat_at=node.last_heartbeat_at,
        software_version=node.software_version,
        fingerprint=node.fingerprint,
        timezone=node.timezone,
        availability=selectors.describe_availability(node=node),
        accept_work=decision.available,
        reason=decision.reason,
    )


@router.get(
    "/fabric/nodes",
    response={200: list[NodeOut], **_ERRORS},
    summary="All nodes of the fleet (admins); ?retired=true includes retired ones",
)
def list_nodes(request: HttpRequest, retired: bool = False) -> list[NodeOut]:
    _require_admin(request)
    return [node_out(node) for node in selectors.fleet(include_retired=retired)]


# --- tasks ------------------------------------------------------------------------------------


def _task_payload(body: TaskIn) -> dict[str, Any]:
    if body.payload is not None:
        return body.payload
    if body.kind == "probe":
        return {"seconds": body.seconds or 0}
    if body.kind == "call":
        return {"function": body.function, "args": body.args or {}}
    return {}


def task_out(task: FabricTask) -> TaskOut:
    def ref(node: ComputeNode | None) -> NodeRefOut | None:
        return NodeRefOut(id=node.pk, name=node.name) if node is not None else None

    return TaskOut(
        id=task.pk,
        kind=task.kind,
        state=task.state,
        system=task.system,
        pull=task.pull,
        node=ref(task.node),
        reason=(task.placement or {}).get("reason", ""),
        placement=task.placement or {},
        requirements=task.requirements or {},
        artifacts=list(task.artifacts or []),
        attempt=task.attempts,
        attempts=[
            AttemptOut(
                number=a.number,
                node=ref(a.node),
                state=a.state,
                dispatched_at=a.dispatched_at,
                started_at=a.started_at,
                finished_at=a.finished_at,
                duration_seconds=a.duration_seconds,
                note=a.note,
            )
            for a in selectors.task_attempts(task=task)
        ],
        result=task.result,
        error=task.error,
        created_at=task.created_at,
        placed_at=task.placed_at,
        started_at=task.started_at,
        finished_at=task.finished_at,
        lease_expires_at=task.lease_expires_at,
    )


@router.post(
    "/fabric/tasks",
    response={201: TaskOut, **_ERRORS},
    summary="Send a task to the fabric (admins): placed now, or pending with the reason",
)
@validation_errors
def create_task(request: HttpRequest, body: TaskIn) -> Status:
    _require_admin(request)
    task = dispatch.submit_task(
        kind=body.kind,
        payload=_task_payload(body),
        requirements=body.requirements,
        artifacts=body.artifacts,
        idempotency_key=body.idempotency_key,
        submitted_by=request.user,
        pull=body.pull,
    )
    task.refresh_from_db()
    return Status(201, task_out(task))


@router.get(
    "/fabric/tasks",
    response={200: list[TaskOut], **_ERRORS},
    summary="Recent tasks (admins); ?state=pending lists what waits, oldest first",
)
def list_tasks(request: HttpRequest, state: str | None = None, limit: int = 50) -> list[TaskOut]:
    _require_admin(request)
    limit = max(1, min(limit, 500))
    return [task_out(t) for t in selectors.task_list(state=state, limit=limit)]


@router.get(
    "/fabric/tasks/{task_id}",
    response={200: TaskOut, **_ERRORS},
    summary="A task's state, node, placement reason, attempts and result (admins)",
)
def get_task(request: HttpRequest, task_id: int) -> TaskOut:
    _require_admin(request)
    task = get_object_or_404(FabricTask.objects.select_related("node"), pk=task_id)
    return task_out(task)


def _record(request: HttpRequest, items: list[results.ResultIn]) -> list[ResultOutcomeOut]:
    outcomes = results.record_results(node=request.auth, results=items)
    return [
        ResultOutcomeOut(task=o.task_id, recorded=o.recorded, reason=o.reason) for o in outcomes
    ]


@router.post(
    "/fabric/tasks/{task_id}/result",
    auth=node_auth,
    response={200: ResultOutcomeOut, **_ERRORS},
    summary="A node reports the result of its attempt (recorded once; late attempts ignored)",
)
def post_result(request: HttpRequest, task_id: int, body: ResultIn) -> ResultOutcomeOut:
    item = results.ResultIn(
        task_id=task_id, attempt=body.attempt, token=body.token, ok=body.ok, result=body.result,
        error=body.error, duration_seconds=body.duration_seconds,
    )  # fmt: skip
    return _record(request, [item])[0]


@router.post(
    "/fabric/tasks/{task_id}/claim",
    auth=node_auth,
    response={200: ClaimOut, **_ERRORS},
    summary="A node that took a pull task from a capability queue asks to run it",
)
def claim_task(request: HttpRequest, task_id: int, body: ClaimIn) -> ClaimOut:
    claim = pull.claim_task(
        node=request.auth, task_id=task_id, attempt=body.attempt, token=body.token
    )
    return ClaimOut(task=task_id, claimed=claim.claimed, reason=claim.reason)


@router.post(
    "/fabric/results",
    auth=node_auth,
    response={200: ResultsOut, **_ERRORS},
    summary="A node reports several results at once (what orchcap-agent sends)",
)
def post_results(request: HttpRequest, body: ResultsIn) -> ResultsOut:
    items = [
        results.ResultIn(
            task_id=r.task,
            attempt=r.attempt,
            token=r.token,
            ok=r.ok,
            result=r.result,
            error=r.error,
            duration_seconds=r.duration_seconds,
        )
        for r in body.results
    ]
    return ResultsOut(outcomes=_record(request, items))


# --- artefacts --------------------------------------------------------------------------------


_RAW_BODY = {
    "required": True,
    "description": "The bytes, up to ORCHCAP_FABRIC_ARTIFACT_MAX_BYTES (413 beyond).",
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
}


def _artifact_body(request: HttpRequest) -> bytes:
    # Artefacts (trained models) may be far larger than the JSON bodies DATA_UPLOAD_MAX_MEMORY_SIZE
    # is meant for: their own limit applies.
    return read_raw_body(
        request,
        limit=settings.ORCHCAP_FABRIC_ARTIFACT_MAX_BYTES,
        setting="ORCHCAP_FABRIC_ARTIFACT_MAX_BYTES",
    )


@router.post(
    "/fabric/artifacts",
    response={201: ArtifactOut, **_ERRORS},
    summary="Store an artefact (admins): the raw request body; answers its SHA-256",
    openapi_extra={"requestBody": _RAW_BODY},
)
@validation_errors
def upload_artifact(request: HttpRequest, name: str = "") -> Status:
    _require_admin(request)
    artifact = artifacts.store_artifact(
        content=_artifact_body(request), name=name, created_by=request.user
    )
    return Status(201, ArtifactOut(sha256=artifact.sha256, size=artifact.size, name=artifact.name))


@router.post(
    "/fabric/tasks/{task_id}/artifacts",
    auth=node_auth,
    response={201: ArtifactOut, **_ERRORS, 409: ErrorOut},
    summary="A node stores bytes its current attempt produced (raw body); answers the SHA-256",
    openapi_extra={"requestBody": _RAW_BODY},
)
@validation_errors
def upload_task_output(
    request: HttpRequest, task_id: int, attempt: int, token: str, name: str = ""
) -> Status:
    try:
        artifact = artifacts.store_task_output(
            node=request.auth, task_id=task_id, attempt=attempt, token=token,
            content=_artifact_body(request), name=name,
        )  # fmt: skip
    except NodeConflict as exc:
        raise HttpError(409, str(exc)) from None
    return Status(201, ArtifactOut(sha256=artifact.sha256, size=artifact.size, name=artifact.name))


@router.get(
    "/fabric/artifacts/{sha256}",
    auth=node_auth,
    response={200: None, **_ERRORS, 404: ErrorOut},
    summary="A node downloads an artefact one of its current tasks names (raw bytes)",
)
def download_artifact(request: HttpRequest, sha256: str) -> HttpResponse:
    artifact = None
    if payloads.is_sha256(sha256):
        artifact = selectors.artifact_for_node(node=request.auth, sha256=sha256)
    if artifact is None:
        # One answer for "no such artefact" and "not yours": a node learns nothing about others.
        raise HttpError(404, "no task of this node needs that artefact")
    response = HttpResponse(bytes(artifact.content), content_type="application/octet-stream")
    response["X-Content-SHA256"] = artifact.sha256
    response["Content-Length"] = str(artifact.size)
    return response
