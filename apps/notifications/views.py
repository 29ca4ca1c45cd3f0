"""Pages: the notifications list (mark one or all read, with htmx or plain posts) and the
preferences form. Everyone signed in has them; someone else's notification is 404."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core.http import HtmxHttpRequest
from apps.notifications import selectors, services
from apps.notifications.forms import PreferencesForm

PAGE_SIZE = 30


@require_GET
@login_required
def notification_list(request: HtmxHttpRequest) -> HttpResponse:
    unread_only = request.GET.get("unread") == "1"
    rows = selectors.notifications_for(user=request.user, unread=unread_only)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "notifications/list.html",
        {"page": page, "unread_only": unread_only},
    )


@require_POST
@login_required
def notification_read(request: HtmxHttpRequest, notification_id: int) -> HttpResponse:
    notification = selectors.notification_for(user=request.user, notification_id=notification_id)
    services.mark_read(user=request.user, notification=notification)
    if request.htmx:
        # The row, and the bell's count out of band.
        return render(
            request, "notifications/list.html#notification-row", {"row": notification, "oob": True}
        )
    return redirect("notification_list")


@require_POST
@login_required
def notification_read_all(request: HtmxHttpRequest) -> HttpResponse:
    count = services.mark_all_read(user=request.user)
    messages.success(request, f"{count} marked read." if count else "Nothing unread.")
    return redirect("notification_list")


@require_http_methods(["GET", "POST"])
@login_required
def notification_preferences(request: HtmxHttpRequest) -> HttpResponse:
    rows = selectors.preferences_for(user=request.user)
    form = PreferencesForm(request.POST or None, rows=rows)
    if request.method == "POST" and form.is_valid():
        services.set_preferences(user=request.user, choices=form.choices())
        messages.success(request, "Notification preferences saved.")
        return redirect("notification_preferences")
    table = [
        {"row": row, "in_app": form[f"{row.kind}-in_app"], "email": form[f"{row.kind}-email"]}
        for row in rows
    ]
    return render(
        request,
        "notifications/preferences.html",
        {"form": form, "table": table},
        status=422 if request.method == "POST" else 200,
    )
