from django.contrib import admin

from apps.orchestrations.models import (
    Orchestration,
    OrchestrationVersion,
    SiteChange,
    StageChange,
)


@admin.register(Orchestration)
class OrchestrationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "team", "process", "owner", "created_at")
    search_fields = ("name", "slug")


@admin.register(OrchestrationVersion)
class OrchestrationVersionAdmin(admin.ModelAdmin):
    list_display = ("orchestration", "number", "stage", "canary_share", "created_at")
    list_filter = ("stage",)


@admin.register(StageChange)
class StageChangeAdmin(admin.ModelAdmin):
    list_display = ("orchestration", "version", "from_stage", "to_stage", "actor", "created_at")


@admin.register(SiteChange)
class SiteChangeAdmin(admin.ModelAdmin):
    list_display = ("orchestration", "from_site", "to_site", "actor", "created_at")
