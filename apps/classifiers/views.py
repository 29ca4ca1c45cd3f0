from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.cases import selectors as case_selectors
from apps.cases.services.second_look import can_request_second_look
from apps.classifiers import gates, placement, selectors, services
from apps.classifiers.forms import LearningSettingsForm
from apps.classifiers.models import TrainingJob
from apps.classifiers.types import TrainingRefused
from apps.core.http import HtmxHttpRequest


@require_http_methods(["GET", "POST"])
@login_required
def model_list(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    process = case_selectors.process_for_member(user=request.user, slug=slug)
    can_promote = selectors.can_promote(user=request.user, process=process)
    settings = services.learning_settings(process=process)
    form = LearningSettingsForm(request.POST or None, instance=settings)
    if request.method == "POST":
        if not can_promote:
            raise PermissionDenied("Only the team's managers and admins change training settings.")
        if form.is_valid():
            form.save()
            messages.success(request, "Training settings saved.")
            return redirect("model_list", slug=slug)
    try:
        services.check_can_train(process=process)
        refusal = ""
    except TrainingRefused as exc:
        refusal = str(exc)
    jobs = selectors.recent_jobs(process=process, limit=5)
    context = {
        "process": process,
        "versions": selectors.model_versions_of(process=process),
        "jobs": jobs,
        "active_job": next((job for job in jobs if job.is_active), None),
        "can_train": selectors.can_train(user=request.user, process=process),
        "can_promote": can_promote,
        # Links are shown only to those the linked page lets in.
        "can_see_label_errors": can_request_second_look(user=request.user, process=process),
        "can_see_autonomy": gates.may_view_autonomy(user=request.user, process=process),
        "refusal": refusal,
        "form": form,
        "since_training": services.decisions_since_training(process=process),
        "history": selectors.registry_history(process=process, limit=10),
    }
    return render(
        request, "classifiers/model_list.html", context, status=422 if form.errors else 200
    )


@require_POST
@login_required
def model_train(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    process = case_selectors.process_for_member(user=request.user, slug=slug)
    if not selectors.can_train(user=request.user, process=process):
        raise PermissionDenied("Only the team's experts, managers and admins train models.")
    try:
        job = services.start_training(process=process, requested_by=request.user)
    except TrainingRefused as exc:
        messages.error(request, f"Cannot train a model yet: {exc}.")
    except services.TrainingInProgress as exc:
        messages.info(request, f"A training is already {exc.job.state}; follow it below.")
    else:
        messages.success(request, f"Training job {job.pk} queued.")
    return redirect("model_list", slug=slug)


@require_GET
@login_required
def training_job(request: HtmxHttpRequest, slug: str, job_id: int) -> HttpResponse:
    """The progress fragment the models page polls while a job runs."""
    process = case_selectors.process_for_member(user=request.user, slug=slug)
    job = get_object_or_404(
        TrainingJob.objects.select_related("model_version", "requested_by"),
        pk=job_id,
        process=process,
    )
    response = render(
        request, "classifiers/model_list.html#job-status", {"process": process, "job": job}
    )
    if request.htmx and not job.is_active:
        response["HX-Refresh"] = "true"  # the new version belongs in the table
    return response


@require_GET
@login_required
def model_detail(request: HtmxHttpRequest, slug: str, version: int) -> HttpResponse:
    process = case_selectors.process_for_member(user=request.user, slug=slug)
    model = get_object_or_404(selectors.model_versions_of(process=process), version=version)
    confusion = model.metrics.get("confusion", {})
    rows = list(zip(confusion.get("labels", []), confusion.get("matrix", []), strict=False))
    return render(
        request,
        "classifiers/model_detail.html",
        {
            "process": process,
            "model": model,
            "confusion_labels": confusion.get("labels", []),
            "confusion_rows": rows,
            "can_promote": selectors.can_promote(user=request.user, process=process),
            "history": model.events.select_related("actor").order_by("-at"),
        },
    )


def _promoter_process(request: HtmxHttpRequest, slug: str):  # type: ignore[no-untyped-def]
    process = case_selectors.process_for_member(user=request.user, slug=slug)
    if not selectors.can_promote(user=request.user, process=process):
        raise PermissionDenied("Only the team's managers and admins promote or roll back models.")
    return process


@require_POST
@login_required
def model_promote(request: HtmxHttpRequest, slug: str, version: int) -> HttpResponse:
    process = _promoter_process(request, slug)
    model = get_object_or_404(selectors.model_versions_of(process=process), version=version)
    try:
        services.promote(version=model, actor=request.user)
    except services.ArtifactTampered as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Version {version} now suggests labels to the experts.")
    return redirect("model_list", slug=slug)


@require_POST
@login_required
def model_rollback(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    process = _promoter_process(request, slug)
    try:
        target = services.rollback(process=process, actor=request.user)
    except (ValidationError, services.ArtifactTampered) as exc:
        text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        messages.error(request, f"Nothing rolled back: {text}")
    else:
        messages.success(request, f"Rolled back to version {target.version}.")
    return redirect("model_list", slug=slug)


@require_POST
@login_required
def model_gpu_only(request: HtmxHttpRequest, slug: str, version: int) -> HttpResponse:
    """Keep a model version to GPU nodes (`gpu_only=on`) or let any node run it."""
    process = case_selectors.process_for_member(user=request.user, slug=slug)
    if not selectors.can_promote(user=request.user, process=process):
        raise PermissionDenied("Only the team's managers and admins decide where a model runs.")
    model = get_object_or_404(selectors.model_versions_of(process=process), version=version)
    gpu_only = request.POST.get("gpu_only") == "on"
    placement.set_gpu_only(version=model, gpu_only=gpu_only, actor=request.user)
    messages.success(
        request,
        f"Version {version} now predicts "
        + ("only on GPU nodes of the fabric." if gpu_only else "on any node."),
    )
    return redirect("model_detail", slug=slug, version=version)
