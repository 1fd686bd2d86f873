"""Where a webhook may be sent: the endpoint's URL as customers give it (`check_url`), and the
addresses its host resolves to when a delivery is sent (`resolve`), so that no endpoint reaches
this service's own network (SSRF): only globally routable unicast addresses, IPv4 and IPv6,
after DNS, and the connection goes to the address that was checked (no second resolution for a
DNS rebinding to answer differently). Loopback only when the development setting allows it."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import idna

MAX_URL_LENGTH = 2048
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses it resolves to; `socket.getaddrinfo` by default.
Resolver = Callable[[str, int], Awaitable[list[str]]]


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Refused by name, whatever the Python's `ipaddress` tables say (older releases miss some):
# IPv4-compatible (::a.b.c.d, deprecated) and IPv4-translated (SIIT) addresses, local-use NAT64,
# and the deprecated IPv6 site-local range.
_REFUSED_V6 = (
    ipaddress.IPv6Network("::/96"),
    ipaddress.IPv6Network("::ffff:0:0:0/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("fec0::/10"),
)
# Ports an https endpoint may use: 443, or an unprivileged one (the services a host keeps to
# itself listen below 1024: ssh, smtp, ...). Loopback in development: any port.
HTTPS_PORT = 443
FIRST_UNPRIVILEGED_PORT = 1024


class UrlRefused(ValueError):
    """Why a URL may not be an endpoint (the message is for the customer)."""


class AddressRefused(Exception):
    """A delivery not sent to where the host resolved. The message, shown on the delivery, is the
    same whether the host did not resolve or resolved to an address that is not public, so that
    endpoints cannot map the names and addresses of this service's own network; `detail` says
    which, for the service's log."""

    MESSAGE = "refused: the host does not resolve to public addresses only"

    def __init__(self, detail: str) -> None:
        super().__init__(self.MESSAGE)
        self.detail = detail


def _address_problem(address: IpAddress, allow_loopback: bool) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address inside an IPv6 one reaches that IPv4 address: judged as itself.
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return _address_problem(embedded, allow_loopback)
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    if isinstance(address, ipaddress.IPv6Address) and any(address in network for network in _REFUSED_V6):
        return "a deprecated or local-use IPv6 address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_link_local:
        return "a link-local address (cloud metadata services live there)"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "an address that is not publicly routable"
    return None


def _literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_loopback_host(host: str) -> bool:
    address = _literal(host)
    return host == "localhost" or (address is not None and address.is_loopback)


def _ascii_host(host: str) -> str:
    """The host as DNS and TLS name it: an internationalised name as its A-labels (IDNA 2008 with
    UTS 46 mapping: `exämple.com` is `xn--exmple-cua.com`, a full-width dot a dot)."""
    if host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        raise UrlRefused("url's host is not a valid domain name") from None


def check_url(url: str, *, allow_loopback: bool) -> str:
    """The URL as it is kept, if it may be an endpoint: https (http only to loopback when
    `allow_loopback`), a host (an internationalised one as its A-labels), no user name or
    password (they would travel in every delivery's logs), no fragment, port 443 or an
    unprivileged one, and no IP address that `resolve` would refuse. Raises UrlRefused."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"url is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise UrlRefused("url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("url is not a valid URL") from None
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise UrlRefused("url must be an https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("url must not hold a user name or password: authenticate with the signature")
    if parts.fragment:
        raise UrlRefused("url must not have a fragment (#...)")
    if port == 0:
        raise UrlRefused("url has no valid port")
    ascii_host = _ascii_host(host)
    if ascii_host != host:
        netloc = f"{ascii_host}:{port}" if port is not None else ascii_host
        url, host = urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), ascii_host
    loopback = is_loopback_host(host)
    if parts.scheme == "http" and not (allow_loopback and loopback):
        raise UrlRefused("url must use https://")
    if host == "localhost" and not allow_loopback:
        raise UrlRefused("url must not point at this machine (localhost)")
    address = _literal(host)
    if address is not None and (problem := _address_problem(address, allow_loopback)):
        raise UrlRefused(f"url must not point at {problem}")
    if port is not None and port != HTTPS_PORT and port < FIRST_UNPRIVILEGED_PORT and not (allow_loopback and loopback):
        raise UrlRefused(f"url's port must be {HTTPS_PORT} or at least {FIRST_UNPRIVILEGED_PORT}")
    return url


# Look-ups run on threads of their own: a slow DNS server keeps these busy, not the default
# executor that the rest of the process (password hashing) shares.
_RESOLVER_THREADS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="webhook-dns")


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().run_in_executor(
        _RESOLVER_THREADS, lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    )
    return [str(info[4][0]) for info in infos]


async def resolve(host: str, port: int, *, allow_loopback: bool, resolver: Resolver = system_resolver) -> str:
    """The address to connect to: the first one `host` resolves to, if every one of them may be
    reached (one refused address refuses the host: which one a client would pick is not ours to
    guess). Raises AddressRefused."""
    literal = _literal(host)
    if literal is not None:
        found = [str(literal)]
    else:
        try:
            found = await resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise AddressRefused(f"the host did not resolve: {exc}") from None
    if not found:
        raise AddressRefused("the host resolved to no address")
    for text in found:
        address = _literal(text.split("%", 1)[0])
        if address is None:
            raise AddressRefused("the host resolved to something that is not an IP address")
        if problem := _address_problem(address, allow_loopback):
            raise AddressRefused(f"the host resolves to {problem} ({address})")
    return found[0].split("%", 1)[0]
