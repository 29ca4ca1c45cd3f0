from django.contrib import admin
from django.http import HttpRequest

from apps.autonomy.models import AuditSample, AutonomyChange, CaseRoute, ProcessAutonomy


@admin.register(ProcessAutonomy)
class ProcessAutonomyAdmin(admin.ModelAdmin):
    # Levels change only through the services (gate, log); the admin shows them.
    list_display = ["process", "level", "target", "threshold", "target_precision", "audit_rate"]
    readonly_fields = ["process", "level", "level_since", "target", "shadow_started_at"]


@admin.register(AutonomyChange)
class AutonomyChangeAdmin(admin.ModelAdmin):
    list_display = ["at", "process", "kind", "from_level", "to_level", "actor", "automatic"]
    list_filter = ["process", "kind", "automatic"]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(CaseRoute)
class CaseRouteAdmin(admin.ModelAdmin):
    list_display = ["case", "route", "source", "label", "confidence", "created_at"]
    list_filter = ["process", "source"]
    raw_id_fields = ["case"]


@admin.register(AuditSample)
class AuditSampleAdmin(admin.ModelAdmin):
    list_display = ["case", "label", "confidence", "expert_label", "correct", "created_at"]
    list_filter = ["process", "correct"]
    raw_id_fields = ["case"]
