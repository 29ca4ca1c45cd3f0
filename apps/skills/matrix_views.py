"""Pages: the team skills matrices (managers and admins of a team, organisation admins)."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.core.http import HtmxHttpRequest
from apps.skills import matrix


def _min_rank(request: HtmxHttpRequest) -> int:
    """The level a skill must be held at (?level=N, 1 to 20); a bad value falls back to the
    default rather than failing the page."""
    try:
        rank = int(request.GET.get("level", matrix.DEFAULT_MIN_RANK))
    except ValueError:
        return matrix.DEFAULT_MIN_RANK
    return rank if 1 <= rank <= 20 else matrix.DEFAULT_MIN_RANK


@require_GET
@login_required
def skill_matrices(request: HtmxHttpRequest) -> HttpResponse:
    teams = matrix.matrix_teams(viewer=request.user)
    if not teams:
        raise PermissionDenied("Skills matrices are for the managers and admins of a team.")
    return render(request, "skills/matrices.html", {"teams": teams})


@require_GET
@login_required
def team_matrix(request: HtmxHttpRequest, team_slug: str) -> HttpResponse:
    team = matrix.team_matrix_for(viewer=request.user, slug=team_slug)
    data = matrix.team_matrix(team=team, min_rank=_min_rank(request))
    levels = sorted(
        {(lv.rank, lv.name) for skill in data.skills for lv in skill.levels.all()},
        key=lambda pair: pair[0],
    )
    names: dict[int, str] = {}
    for rank, name in levels:
        names.setdefault(rank, name)
    return render(
        request,
        "skills/team_matrix.html",
        {"matrix": data, "rank_names": sorted(names.items())},
    )
