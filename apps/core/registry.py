"""Extension points for pages that show several domains (home page, navigation).

Upstream apps (people) own the pages; downstream apps (cases, later fabric, capital…) register
what they contribute from their AppConfig.ready(), so dependencies keep pointing one way.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser


@dataclass(frozen=True)
class HomeSection:
    template: str
    # Returns the section's context for `user`, or None when the section has nothing for them.
    provider: Callable[[AbstractBaseUser], dict[str, object] | None]
    order: int = 100


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    order: int = 100


_home_sections: list[HomeSection] = []
_nav_items: list[NavItem] = []


def register_home_section(section: HomeSection) -> None:
    if section not in _home_sections:
        _home_sections.append(section)
        _home_sections.sort(key=lambda s: s.order)


def register_nav_item(item: NavItem) -> None:
    if item not in _nav_items:
        _nav_items.append(item)
        _nav_items.sort(key=lambda i: i.order)


def home_sections(user: AbstractBaseUser) -> list[tuple[str, dict[str, object]]]:
    """(template, context) for every registered section that has something for `user`."""
    rendered = []
    for section in _home_sections:
        context = section.provider(user)
        if context is not None:
            rendered.append((section.template, context))
    return rendered


def nav_items() -> list[NavItem]:
    return list(_nav_items)
