from django.contrib import admin

from apps.skills.models import CareerRole, EvidenceRule, Skill, SkillArea, SkillLevel


class LevelInline(admin.TabularInline):
    model = SkillLevel
    extra = 0


@admin.register(Skill)
class SkillAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "area"]
    inlines = [LevelInline]


@admin.register(EvidenceRule)
class EvidenceRuleAdmin(admin.ModelAdmin):
    list_display = ["level", "kind", "min_count", "min_value", "period_days"]


admin.site.register(SkillArea)
admin.site.register(CareerRole)
