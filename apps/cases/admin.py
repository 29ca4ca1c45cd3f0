from django.contrib import admin

from apps.cases.models import Case, CaseEvent, Decision, ImportJob, Process, ProcessSchemaVersion


@admin.register(Process)
class ProcessAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "team", "overlap", "minutes_per_case", "is_synthetic"]
    list_filter = ["team", "is_synthetic"]
    search_fields = ["name", "slug"]
    filter_horizontal = ["reviewers", "adjudicators"]
    readonly_fields = ["schema"]


@admin.register(ProcessSchemaVersion)
class ProcessSchemaVersionAdmin(admin.ModelAdmin):
    list_display = ["process", "version", "created_by", "created_at"]
    readonly_fields = ["process", "version", "fields", "decisions", "created_by", "created_at"]


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = [
        "pk",
        "external_id",
        "process",
        "status",
        "final_label",
        "label_count",
        "created_at",
    ]
    list_filter = ["process", "status", "is_synthetic"]
    search_fields = ["external_id"]
    readonly_fields = ["embedding", "schema_version"]
    exclude = ["embedding"]


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    list_display = [
        "case",
        "expert",
        "label",
        "reason_code",
        "source",
        "decided_at",
        "retracted_at",
    ]
    list_filter = ["source", "label"]
    raw_id_fields = ["case"]

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # decisions are history: retract, never delete


@admin.register(CaseEvent)
class CaseEventAdmin(admin.ModelAdmin):
    list_display = ["case", "kind", "actor", "at"]
    list_filter = ["kind"]
    raw_id_fields = ["case"]


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["pk", "process", "state", "processed_rows", "total_rows", "created_at"]
