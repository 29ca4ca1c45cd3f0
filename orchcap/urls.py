from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.core.session import session_token
from apps.core.views import healthz
from orchcap.api import api

admin.site.site_header = "orchcap administration"
admin.site.site_title = "orchcap admin"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("session/token", session_token, name="session_token"),
    path("account/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "account/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("", include("apps.people.urls")),
    path("", include("apps.notifications.urls")),
    path("", include("apps.cases.urls")),
    path("", include("apps.rules.urls")),
    path("", include("apps.classifiers.urls")),
    path("", include("apps.autonomy.urls")),
    path("", include("apps.fabric.urls")),
    path("", include("apps.connectors.urls")),
    path("", include("apps.orchestrations.urls")),
    path("", include("apps.capital.urls")),
    path("", include("apps.skills.urls")),
    path("", include("apps.skills.practice_urls")),
    path("", include("apps.skills.routing_urls")),
]
