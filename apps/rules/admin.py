from django.contrib import admin

from apps.rules.models import RejectedCandidate, Rule, RuleVersion


class RuleVersionInline(admin.TabularInline):
    model = RuleVersion
    extra = 0
    fields = ["version", "sentence", "created_by", "created_at", "backtested_at"]
    readonly_fields = fields
    fk_name = "rule"


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    list_display = ["name", "process", "priority", "enabled", "owner", "updated_at"]
    list_filter = ["process", "enabled"]
    search_fields = ["name"]
    readonly_fields = ["current"]
    inlines = [RuleVersionInline]


@admin.register(RejectedCandidate)
class RejectedCandidateAdmin(admin.ModelAdmin):
    list_display = ["sentence", "process", "rejected_by", "rejected_at"]
    list_filter = ["process"]
    search_fields = ["sentence", "reason"]
    readonly_fields = ["fingerprint", "rejected_at"]
