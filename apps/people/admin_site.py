"""The Django admin is for organisation administrators (superusers) only.

It shows every team's cases, users and nodes, so a team's admin role (or a stray `is_staff`)
doesn't open it. Installed through apps.people.apps.OrgAdminConfig, which replaces
django.contrib.admin in INSTALLED_APPS, so `admin.site` is this site everywhere.
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse


class OrgAdminSite(admin.AdminSite):
    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_superuser)

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        # A signed-in person who isn't an organisation admin gets a plain 403, not a login form
        # inviting them to try other credentials.
        if request.user.is_authenticated and not self.has_permission(request):
            raise PermissionDenied("The Django admin is for organisation administrators.")
        return super().login(request, extra_context)


class OrgAdminConfig(AdminConfig):
    default_site = "apps.people.admin_site.OrgAdminSite"
