"""Secrets shown once after POST-redirect-GET (API tokens, enrolment tokens, invitation links).

A form that creates a secret answers its POST with a redirect, so reloading the page never creates
a second one. The raw secret crosses the redirect in the session, never in a URL (URLs end up in
logs and browser history), and the GET pops it: shown on that page once, gone on the next. Only
hashes are stored anywhere else, so this is the one moment the secret exists server-side; it is
kept at most a few minutes in case the GET never comes.
"""

import time

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

_SESSION_KEY = "one_time_secrets"
# Long enough for a slow redirect on a bad connection, short enough that an abandoned secret
# does not linger in the session store.
MAX_AGE_SECONDS = 300


def stash_secret(request: HttpRequest, *, key: str, secret: str) -> None:
    """Keep `secret` for the next page that pops `key` (one per key: a newer one replaces it)."""
    stash = request.session.get(_SESSION_KEY, {})
    stash[key] = {"secret": secret, "at": time.time()}
    request.session[_SESSION_KEY] = stash


def pop_secret(request: HttpRequest, *, key: str) -> str | None:
    """The secret stashed under `key`, removed from the session; None when there is none or it
    is older than MAX_AGE_SECONDS. Expired secrets of other keys are dropped as well."""
    stash = request.session.get(_SESSION_KEY)
    if not stash:
        return None
    now = time.time()
    entry = stash.pop(key, None)
    fresh = {k: v for k, v in stash.items() if now - v["at"] <= MAX_AGE_SECONDS}
    if fresh:
        request.session[_SESSION_KEY] = fresh
    else:
        del request.session[_SESSION_KEY]
    if entry is None or now - entry["at"] > MAX_AGE_SECONDS:
        return None
    return entry["secret"]


def keep_out_of_caches(response: HttpResponse) -> HttpResponse:
    """A page that shows a secret must not be kept by the browser's cache or back button."""
    add_never_cache_headers(response)
    return response
