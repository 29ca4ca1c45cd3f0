from django.http import HttpRequest
from ninja import Router

from apps.people import selectors
from apps.people.schemas import TeamOut

router = Router(tags=["people"])


@router.get(
    "/teams", response=list[TeamOut], summary="The caller's teams and the caller's roles in each"
)
def list_teams(request: HttpRequest) -> list[TeamOut]:
    roles = selectors.roles_by_team(user=request.user)
    order = ["expert", "manager", "staff", "admin"]
    return [
        TeamOut(
            slug=team.slug, name=team.name, roles=sorted(roles.get(team.slug, ()), key=order.index)
        )
        for team in selectors.teams_for(user=request.user)
    ]
