"""Pages: the skill framework exported as a JSON file and imported from one (organisation
admins; others 403). An import with problems changes nothing and lists each with its path (422)."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from apps.core.http import HtmxHttpRequest
from apps.people.selectors import is_org_admin
from apps.skills import framework_io
from apps.skills.forms_framework_io import FrameworkImportForm


def _admin_only(request: HtmxHttpRequest) -> None:
    if not is_org_admin(user=request.user):
        raise PermissionDenied("Only organisation admins export and import the skill framework.")


@require_GET
@login_required
def framework_export(request: HtmxHttpRequest) -> HttpResponse:
    _admin_only(request)
    response = JsonResponse(
        framework_io.export_framework(), json_dumps_params={"indent": 2, "ensure_ascii": False}
    )
    response["Content-Disposition"] = 'attachment; filename="skill-framework.json"'
    return response


@require_http_methods(["GET", "POST"])
@login_required
def framework_import(request: HtmxHttpRequest) -> HttpResponse:
    _admin_only(request)
    form = FrameworkImportForm()
    problems: list[framework_io.ImportProblem] = []
    status = 200
    if request.method == "POST":
        form = FrameworkImportForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                summary = framework_io.import_framework(document=form.cleaned_data["document"])
            except framework_io.FrameworkImportError as exc:
                problems = exc.problems
            else:
                messages.success(request, str(summary))
                return redirect("skills_framework")
        status = 422
    return render(
        request,
        "skills/framework_import.html",
        {"form": form, "problems": problems, "example": json.dumps(
            {"format": framework_io.FORMAT, "version": framework_io.VERSION, "areas": [],
             "skills": [], "roles": []}
        )},
        status=status,
    )  # fmt: skip
