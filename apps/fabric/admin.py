from django.contrib import admin

from apps.fabric.models import (
    ComputeNode,
    EnrollmentToken,
    FabricArtifact,
    FabricTask,
    NodeEvent,
    TaskAttempt,
)


@admin.register(ComputeNode)
class ComputeNodeAdmin(admin.ModelAdmin):
    list_display = ["name", "node_class", "state", "owner", "team", "last_heartbeat_at"]
    list_filter = ["state", "node_class", "team"]
    search_fields = ["name", "fingerprint"]
    readonly_fields = ["credential_hash", "fingerprint", "last_heartbeat_at", "heartbeat_count"]


@admin.register(EnrollmentToken)
class EnrollmentTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "note", "team", "auto_approve", "expires_at", "used_at", "revoked_at"]
    readonly_fields = ["token_hash", "prefix", "used_at", "used_by"]


@admin.register(NodeEvent)
class NodeEventAdmin(admin.ModelAdmin):
    list_display = ["node", "kind", "from_state", "to_state", "actor", "at"]
    list_filter = ["kind"]


@admin.register(FabricTask)
class FabricTaskAdmin(admin.ModelAdmin):
    list_display = ["pk", "kind", "state", "node", "attempts", "created_at"]
    list_filter = ["state", "kind", "system", "bundle"]


@admin.register(TaskAttempt)
class TaskAttemptAdmin(admin.ModelAdmin):
    list_display = ["task", "number", "node", "state", "dispatched_at", "finished_at"]
    list_filter = ["state"]
    readonly_fields = ["token"]


@admin.register(FabricArtifact)
class FabricArtifactAdmin(admin.ModelAdmin):
    list_display = ["sha256", "name", "size", "created_at"]
    exclude = ["content"]  # bytes: not for a form
    readonly_fields = ["sha256", "size"]
