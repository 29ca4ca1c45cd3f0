from django.http import HttpRequest

from apps.core import registry
from apps.people import selectors


def navigation(request: HttpRequest) -> dict[str, object]:
    """Navigation entries by role; later apps add theirs here (each entry: label, url name, roles)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    roles = selectors.roles_of(user=user)
    is_admin = selectors.is_org_admin(user=user)
    items = [
        ("Home", "home"),
        *((item.label, item.url_name) for item in registry.nav_items(user, roles)),
        ("API tokens", "api_tokens"),
    ]
    return {"nav_items": items, "nav_roles": sorted(roles), "nav_is_admin": is_admin}
