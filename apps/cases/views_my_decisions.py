from dataclasses import replace

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.cases.forms_my_decisions import MyDecisionsFilterForm
from apps.cases.selectors import processes_for
from apps.cases.selectors_my_decisions import my_decisions, my_labels, outcome_counts
from apps.core.http import HtmxHttpRequest

PAGE_SIZE = 25


@require_GET
@login_required
def my_decisions_page(request: HtmxHttpRequest) -> HttpResponse:
    """What the signed-in expert decided and what became of it; anyone signed in may look (a
    user who never labelled a case sees an empty list)."""
    form = MyDecisionsFilterForm(
        request.GET if any(key != "page" for key in request.GET) else None,
        processes=list(processes_for(user=request.user).order_by("name")),
        labels=my_labels(expert=request.user),
    )
    status = 200
    context: dict[str, object] = {"form": form}
    if form.is_bound and not form.is_valid():
        # Filters that can't be applied show their errors, not a list that ignores them.
        status = 400
        context.update(page=None, counts=None, query="")
    else:
        filters = form.filters() if form.is_bound else None
        decisions = my_decisions(expert=request.user, filters=filters)
        # The counts by outcome are those of the other filters, so each reads as "of these".
        any_outcome = (
            my_decisions(expert=request.user, filters=replace(filters, outcome=""))
            if filters
            else decisions
        )
        query = request.GET.copy()
        query.pop("page", None)
        context.update(
            page=Paginator(decisions, PAGE_SIZE).get_page(request.GET.get("page")),
            counts=outcome_counts(decisions=any_outcome),
            query=query.urlencode(),
        )
    template = (
        "cases/my_decisions.html#decision-rows" if request.htmx else "cases/my_decisions.html"
    )
    return render(request, template, context, status=status)
