"""SSRF protection: where a webhook may go.

A target is checked when a connector is configured and again right before each connection: the
host is resolved, every address it resolves to must be public (or the host allow-listed in
ORCHCAP_WEBHOOK_ALLOWED_HOSTS), and the connection then goes to the address that was checked, so
a DNS answer that changes in between (DNS rebinding) can't point it elsewhere.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(ValidationError):
    """A webhook target orchcap won't connect to (the message says why)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written in the URL (sent as Host and used for TLS)
    port: int
    path: str  # path and query string
    address: str  # the checked address to connect to

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (a literal address resolves to itself, without DNS)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _forbidden(ip: IPAddress) -> str | None:
    """Why `ip` is no place for a webhook, or None when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for reason, test in (
        ("an unspecified", ip.is_unspecified),
        ("a loopback", ip.is_loopback),
        ("a link-local", ip.is_link_local),
        ("a multicast", ip.is_multicast),
        ("a reserved", ip.is_reserved),
        ("a private", ip.is_private),
        ("a non-public", not ip.is_global),
    ):
        if test:
            return f"{reason} address"
    return None


def _allow_list() -> tuple[set[str], list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    names: set[str] = set()
    networks = []
    for entry in settings.ORCHCAP_WEBHOOK_ALLOWED_HOSTS:
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            names.add(entry.lower().rstrip("."))
    return names, networks


def check_target(url: str) -> Target:
    """The checked target of `url`; raises TargetRefused with the reason. Resolves the host (a
    name lookup; never a connection)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"The URL is not valid: {exc}.") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("Webhook URLs must start with http:// or https://.")
    if parts.username or parts.password:
        raise TargetRefused("Webhook URLs must not carry a user name or password.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise TargetRefused("The URL has no host.")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve_host(host, port)
    except (OSError, UnicodeError):
        raise TargetRefused(f"The host {host} does not resolve.") from None
    if not addresses:
        raise TargetRefused(f"The host {host} does not resolve.")
    names, networks = _allow_list()
    host_allowed = host.lower() in names
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if host_allowed or any(ip in network for network in networks):
            continue
        reason = _forbidden(ip)
        if reason:
            raise TargetRefused(
                f"{host} resolves to {address}, {reason}: webhooks go to public addresses only "
                "unless an administrator allow-lists the host (ORCHCAP_WEBHOOK_ALLOWED_HOSTS)."
            )
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(parts.scheme, host, port, path, addresses[0])
