"""Pinning an orchestration to a site: its runs are then evaluated only on fabric nodes labelled
`site=<this>` (apps/orchestrations/execution.py `requirements_of`). Which machines may see a
process's items is a data-residency decision for the whole organisation, so only an organisation
admin makes it; the team's managers see it."""

import re

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet

from apps.fabric.models import ComputeNode
from apps.orchestrations.models import Orchestration, SiteChange
from apps.orchestrations.services import MAX_REASON
from apps.people.selectors import AnyUser, is_org_admin

MAX_SITE = 60  # Orchestration.site's length
# What `orchcap-agent --label site=…` can carry and a person can type: no spaces at the ends,
# no control characters, no "," (the enrolment form's label separator).
SITE_PATTERN = re.compile(r"^[\w.\-:/]([\w.\-:/ ]*[\w.\-:/])?$")
SITE_RULE = "letters, digits and . - _ : / (spaces inside)"


def can_set_site(*, user: AnyUser) -> bool:
    return is_org_admin(user=user)


def clean_site(site: object) -> str:
    """The site, stripped; "" unpins. ValidationError with the reason otherwise."""
    if not isinstance(site, str):
        raise ValidationError("site: expected text")
    site = site.strip()
    if len(site) > MAX_SITE:
        raise ValidationError(f"site: at most {MAX_SITE} characters")
    if site and not SITE_PATTERN.fullmatch(site):
        raise ValidationError(f"site: {site!r} is not a site label ({SITE_RULE})")
    return site


def nodes_at_site(*, site: str) -> int:
    """Enrolled, unrevoked nodes labelled `site=<site>` (0 for no site): whether a pinned
    orchestration's items have anywhere to run."""
    if not site:
        return 0
    return ComputeNode.objects.filter(labels__site=site, revoked_at__isnull=True).count()


def clean_reason(reason: object) -> str:
    """The reason, stripped. Required: where a process's items may be seen is a decision someone
    must be able to explain later (issue 12: every change is logged with actor and reason)."""
    if not isinstance(reason, str):
        raise ValidationError("reason: expected text")
    reason = reason.strip()
    if not reason:
        raise ValidationError("reason: say why the site changes")
    if len(reason) > MAX_REASON:
        raise ValidationError(f"reason: at most {MAX_REASON} characters")
    return reason


@transaction.atomic
def set_site(
    *,
    orchestration: Orchestration,
    site: object,
    actor: AbstractBaseUser | None,
    reason: object = "",
) -> Orchestration:
    """Pin `orchestration` to `site` ("" unpins), logged as a SiteChange with `actor` and
    `reason`. PermissionDenied unless `actor` is an organisation admin; ValidationError for a
    malformed site, or a missing reason when the site changes (saving the same site writes
    nothing and needs none). Items already received keep the placement they were sent with; runs
    dispatched from now on carry the new site. Returns the orchestration, reloaded."""
    if actor is None or not can_set_site(user=actor):
        raise PermissionDenied(
            "Only an organisation admin pins an orchestration to a site: it decides which "
            "machines see the process's items."
        )
    site = clean_site(site)
    orchestration = Orchestration.objects.select_for_update().get(pk=orchestration.pk)
    if orchestration.site == site:
        return orchestration
    reason = clean_reason(reason)
    SiteChange.objects.create(
        orchestration=orchestration,
        actor=actor,
        from_site=orchestration.site,
        to_site=site,
        reason=reason,
    )
    orchestration.site = site
    orchestration.save(update_fields=["site", "updated_at"])
    return orchestration


def site_log(*, orchestration: Orchestration, limit: int = 50) -> QuerySet[SiteChange]:
    """The orchestration's site changes, newest first, with their actors."""
    return orchestration.site_changes.select_related("actor")[:limit]
