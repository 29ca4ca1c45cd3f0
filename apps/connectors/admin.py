from django.contrib import admin

from apps.connectors.models import Connector, Delivery, DeliveryAttempt


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "url", "enabled", "failing_since")
    list_filter = ("enabled", "team")
    exclude = ("secret", "previous_secret", "drain_token")


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    readonly_fields = ("started_at", "status_code", "latency_ms", "response_snippet", "error")


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("webhook_id", "connector", "event_type", "state", "attempts", "created_at")
    list_filter = ("state", "event_type")
    inlines = [AttemptInline]
