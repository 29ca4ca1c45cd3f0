"""Pages: the team skills matrices (managers and admins of a team, organisation admins)."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
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
    data = matrix.team_matrix(team=team, min_rank=_min_rank(request), with_evidence=False)
    levels = sorted(
        {(lv.rank, lv.name) for skill in data.skills for lv in skill.levels.all()},
        key=lambda pair: pair[0],
    )
    names: dict[int, str] = {}
    for rank, name in levels:
        names.setdefault(rank, name)
    # Each cell's evidence URL is the matrix's plus ids (reverse() per cell would be most of the
    # time of a thousand cells).
    prefix = reverse("team_skill_matrix", args=[team.slug])
    for row in data.rows:
        person_id = row.person.pk
        for cell in row.cells:
            if cell.level is not None:
                cell.url = f"{prefix}people/{person_id}/skills/{cell.skill.pk}/"
    return render(
        request,
        "skills/team_matrix.html",
        {"matrix": data, "rank_names": sorted(names.items())},
    )


@require_GET
@login_required
def matrix_cell(
    request: HtmxHttpRequest, team_slug: str, user_id: int, skill_id: int
) -> HttpResponse:
    """One cell's evidence: the fragment the matrix loads into the cell (htmx), or a page of its
    own (the cell's link, without JavaScript)."""
    team = matrix.team_matrix_for(viewer=request.user, slug=team_slug)
    person, cell = matrix.cell_evidence(team=team, person_id=user_id, skill_id=skill_id)
    template = (
        "skills/matrix_cell.html#cell-evidence" if request.htmx else "skills/matrix_cell.html"
    )
    return render(request, template, {"team": team, "person": person, "cell": cell})
