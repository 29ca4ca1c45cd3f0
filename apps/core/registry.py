"""Extension points for pages that show several domains (home page, navigation, case panels).

Upstream apps (people, cases) own the pages; downstream apps (cases, classifiers, later fabric,
capital…) register what they contribute from their AppConfig.ready(), so dependencies keep pointing
one way.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
    # Who sees the entry by role: holders of any of these roles in any team (and organisation
    # admins when `org_admins`). Decided from the roles the navigation already loaded: no query.
    roles: frozenset[str] | None = None
    org_admins: bool = True
    # Whether `user` sees the entry when that needs more than roles (e.g. owns a machine): one
    # query per page, so only where roles can't tell. None (and no roles): everyone signed in.
    visible: Callable[[AbstractBaseUser], bool] | None = None

    def shown_to(self, user: AbstractBaseUser, roles: set[str]) -> bool:
        if self.roles is not None:
            by_role = bool(self.roles & roles) or (
                self.org_admins and bool(getattr(user, "is_superuser", False))
            )
            if not by_role:
                return False
        return self.visible is None or self.visible(user)


@dataclass(frozen=True)
class CasePanel:
    """A box on the review pane (and on a decided case's page) contributed by another domain."""

    template: str
    # Returns the panel's context for `case` seen by `user`, or None when it has nothing to show.
    # It must keep review blind: never other experts' labels on an open case.
    provider: Callable[[Any, AbstractBaseUser], dict[str, object] | None]
    order: int = 100


_home_sections: list[HomeSection] = []
_nav_items: list[NavItem] = []
_case_panels: list[CasePanel] = []
log = logging.getLogger(__name__)


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


def nav_items(user: AbstractBaseUser | None = None, roles: set[str] | None = None) -> list[NavItem]:
    """The entries `user`, holding `roles` in their teams, may follow (all without a user)."""
    if user is None:
        return list(_nav_items)
    return [item for item in _nav_items if item.shown_to(user, roles or set())]


def register_case_panel(panel: CasePanel) -> None:
    if panel not in _case_panels:
        _case_panels.append(panel)
        _case_panels.sort(key=lambda p: p.order)


def case_panels(case: Any, user: AbstractBaseUser) -> list[tuple[str, dict[str, object]]]:
    """(template, context) for every registered panel that has something for `case`.

    A panel that fails is logged and left out: another domain's bug must never cost an expert
    the review page.
    """
    rendered = []
    for panel in _case_panels:
        try:
            context = panel.provider(case, user)
        except Exception:
            log.exception("case panel %s failed on case %s", panel.template, case.pk)
            continue
        if context is not None:
            rendered.append((panel.template, context))
    return rendered


# What decides a process's cases, for ranking precedents (cases): a downstream app (classifiers:
# the promoted model's field importance) returns {field name: weight}, or None when it has none.
_precedent_weights: list[Callable[[Any], dict[str, float] | None]] = []


def register_precedent_weights(provider: Callable[[Any], dict[str, float] | None]) -> None:
    if provider not in _precedent_weights:
        _precedent_weights.append(provider)


def precedent_weights(process: Any) -> dict[str, float] | None:
    """The first registered provider's field weights for `process`, or None. A provider that
    fails is logged and skipped: precedents then fall back to the decided cases' own evidence."""
    for provider in _precedent_weights:
        try:
            weights = provider(process)
        except Exception:
            log.exception("precedent weights of %s failed on process %s", provider, process.pk)
            continue
        if weights:
            return weights
    return None


# More families for `GET /metrics` (Prometheus text format) from apps above fabric (capital's
# headline figures): each provider returns complete `# HELP`/`# TYPE`/sample lines.
_metrics_expositions: list[Callable[[], str]] = []


def register_metrics_exposition(provider: Callable[[], str]) -> None:
    if provider not in _metrics_expositions:
        _metrics_expositions.append(provider)


def metrics_expositions() -> str:
    """The registered providers' text, one after the other; a failing one is logged and left
    out, so the fabric's own figures are still served."""
    parts = []
    for provider in _metrics_expositions:
        try:
            parts.append(provider())
        except Exception:
            log.exception("metrics exposition %s failed", provider)
    return "".join(parts)


# The review queue's extension point (cases): a higher app may hand an expert one of its own cases
# instead of the queue's next one, and take the answer to it instead of a decision (skills: gold
# cases shown as normal cases to experts new to a process, answered as practice attempts).
@dataclass(frozen=True)
class ReviewQueueHook:
    # (process, expert) -> the case to show instead of the queue's next one, or None.
    serve: Callable[[Any, AbstractBaseUser], Any | None]
    # (process, case, expert, cleaned decision form) -> a notice when it took the answer, or None
    # when the case isn't its own (the queue records a decision as usual).
    answer: Callable[[Any, Any, AbstractBaseUser, dict[str, Any]], str | None]
    # (process, case, expert) -> True when it took the skip.
    skip: Callable[[Any, Any, AbstractBaseUser], bool]


_review_queue_hooks: list[ReviewQueueHook] = []


def register_review_queue_hook(hook: ReviewQueueHook) -> None:
    if hook not in _review_queue_hooks:
        _review_queue_hooks.append(hook)


def review_queue_hooks() -> list[ReviewQueueHook]:
    return list(_review_queue_hooks)
