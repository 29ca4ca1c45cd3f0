from django.contrib import admin

from apps.rules.models import Rule, RuleVersion


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
