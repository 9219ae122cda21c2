"""What pam-guard takes from a RADIUS request: user, source address, session type, NAS.

rlm_python3 (with `pass_all_vps_dict = yes`) passes a dict of lists ("request", "config",
...), each a tuple of (name, value) text pairs, or None when the list is empty. Values are
text as FreeRADIUS prints them (NAS-Port-Type = "Virtual", addresses as dotted quads,
octets as 0x-hex). A User-Name that is not printable ASCII comes as the octets of
MOVED_NAME instead (the `pam_guard` policy moves it aside: rlm_python3 3.2.1 cannot hand
non-UTF-8 text to Python and cuts text at a NUL).
"""

from __future__ import annotations

from policy.addresses import parse_address
from policy.sources import radius_source
from policy.types import RADIUS

# SPEC §9: the NAS-Port-Type names that have an obvious session type.
DEFAULT_PORT_TYPES = {"Virtual": "vpn", "Wireless-802.11": "wifi", "Ethernet": "lan"}
NO_PORT_TYPE = "radius"  # the session type when the NAS says nothing

_SOURCES = {
    "calling_station_id": ("Calling-Station-Id",),
    "framed_ip_address": ("Framed-IP-Address", "Framed-IPv6-Address"),
    "nas_ip_address": ("NAS-IP-Address", "NAS-IPv6-Address"),
}


# policy.d/pam_guard: where the User-Name's bytes are when they are not printable ASCII.
MOVED_NAME = "Tmp-Octets-9"


def user_name(p):
    """The request's User-Name (text; bytes when it is not UTF-8), or None. Cheaper than
    `pairs` when that is all one needs: radiusd puts it first."""
    items = p.get("request") if isinstance(p, dict) else p
    for item in items or ():
        if item[0] == "User-Name" and len(item) == 2:
            return item[1]
    for item in items or ():
        if item[0] == MOVED_NAME and len(item) == 2:
            return _moved_name(item[1])
    return None


def name_in(attrs: dict):
    """user_name for a request already made into {attribute: value} (`pairs`)."""
    name = attrs.get("User-Name")
    if name is None and MOVED_NAME in attrs:
        return _moved_name(attrs[MOVED_NAME])
    return name


def _moved_name(octets: str):
    """The name the policy moved aside, from its octets ("0x..."): text when it is UTF-8
    (the gate still refuses NUL and control characters), else its bytes, which the gate
    refuses as invalid_user and records escaped."""
    try:
        raw = bytes.fromhex(octets.removeprefix("0x"))
    except ValueError:
        return octets.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def rejecting(p) -> bool:
    """A call from Post-Auth-Type REJECT: control's Post-Auth-Type is Reject (FreeRADIUS
    3.2.1 does not always set it; the pam_guard_reject policy does)."""
    items = p.get("config") if isinstance(p, dict) else None
    return _REJECT_MARK in (items or ())


_REJECT_MARK = ("Post-Auth-Type", "Reject")


def outer_eap(attrs: dict) -> bool:
    """An EAP request (`pairs`) in the site the NAS talks to: its User-Name is the outer
    identity (often "anonymous"), never the person, whose name only the inner tunnel sees.
    rlm_eap marks the requests it sends through the tunnel with FreeRADIUS-Proxied-To =
    127.0.0.1 (PEAP's carry an EAP-Message too; TTLS/PAP's none)."""
    return "EAP-Message" in attrs and attrs.get("FreeRADIUS-Proxied-To") != "127.0.0.1"


# Every attribute the recorded facts of a request (address, service, client) come from.
FACT_ATTRIBUTES = (
    "Calling-Station-Id",
    "Framed-IP-Address",
    "Framed-IPv6-Address",
    "NAS-IP-Address",
    "NAS-IPv6-Address",
    "NAS-Identifier",
    "NAS-Port-Type",
)


def fact_key(attrs: dict) -> tuple:
    """The values `source_address`, `session_type` and `client_detail` read, as one key."""
    return tuple(map(attrs.get, FACT_ATTRIBUTES))


def _first_values(items) -> dict:
    """{attribute: first value} of a list of (name, value) pairs. Built by dict() from the
    reversed list, in C: post_auth runs it on every request, and a Python loop over the
    pairs costs more (docs/PERF.md, radius_hook)."""
    try:
        return dict(reversed(items))
    except (TypeError, ValueError):  # an item that is not a pair: take the pairs only
        return dict(reversed([item for item in items if len(item) == 2]))


def attempt_from(gate, user: str, at: float, key: tuple):
    """The gate's Attempt for a request with these facts (fact_key, and after them a failed
    password's digest when `with_digest` added one) at time `at`."""
    attrs = dict(zip(FACT_ATTRIBUTES, key[: len(FACT_ATTRIBUTES)], strict=True))
    digest = key[len(FACT_ATTRIBUTES)] if len(key) > len(FACT_ATTRIBUTES) else None
    settings = gate.settings
    address, raw = source_address(attrs, settings.radius.address_order)
    service = session_type(attrs, settings.radius.port_type_map)
    station = radius_source(
        attrs.get("Calling-Station-Id"),
        attrs.get("Framed-IP-Address") or attrs.get("Framed-IPv6-Address"),
    )
    attempt = gate.attempt(
        user, RADIUS, service, address, raw, client_detail(attrs), source=station, digest=digest
    )
    return attempt._replace(time=at)


# policy.d/pam_guard: where a User-Password that is not printable ASCII waits (control list).
MOVED_PASSWORD = "Tmp-Octets-7"


def with_digest(key: tuple, p, attrs: dict, gate, user: str, log=None) -> tuple:
    """`key` with the keyed digest of the request's wrong PAP password after it
    (lockout.ignore_repeated_password; pam_guard.digests), or as it is: the setting off, no
    User-Password (CHAP, MS-CHAP, EAP: they count as usual), or no key."""
    if not gate.settings.lockout.ignore_repeated_password or isinstance(user, bytes):
        return key
    password = attrs.get("User-Password")
    moved = pairs(p, "config").get(MOVED_PASSWORD)
    if moved is not None:
        try:
            password = bytes.fromhex(moved.removeprefix("0x"))
        except ValueError:
            return key
    if password is None:
        return key
    from pam_guard.digests import digest

    found = digest(gate.settings.source, user, password, log)
    return key if found is None else (*key, found)


def pairs(p, name: str = "request") -> dict:
    """One list of the call's argument as {attribute: first value}."""
    if isinstance(p, dict):
        items = p.get(name)
    else:  # pass_all_vps_dict off: p is the request list itself
        items = p if name == "request" else None
    return _first_values(items) if items else {}


def source_address(attrs: dict, order) -> tuple:
    """(canonical address or None, what was given): the first source in `order` that holds an
    address. Anything else (a MAC in Calling-Station-Id) is kept as given, never resolved."""
    raw = None
    for source in order:
        for name in _SOURCES[source]:
            value = attrs.get(name)
            if not value:
                continue
            address = parse_address(value)
            if address is not None:
                return address, value
            if raw is None:
                raw = value
    return None, raw


def session_type(attrs: dict, port_type_map) -> str:
    """The service recorded for this request, from NAS-Port-Type (configured map first)."""
    port_type = attrs.get("NAS-Port-Type")
    if not port_type:
        return NO_PORT_TYPE
    configured = dict(port_type_map)
    if port_type in configured:
        return configured[port_type]
    return DEFAULT_PORT_TYPES.get(port_type) or port_type.lower()[:64]


def nas_of(attrs: dict) -> str:
    """The NAS that sent the request: its address, else its identifier."""
    return (
        attrs.get("NAS-IP-Address")
        or attrs.get("NAS-IPv6-Address")
        or attrs.get("NAS-Identifier")
        or ""
    )


def client_detail(attrs: dict) -> str:
    """The client text recorded with an event: NAS and Calling-Station-Id."""
    parts = []
    nas = attrs.get("NAS-Identifier") or nas_of(attrs)
    if nas:
        parts.append(f"nas={nas}")
    csid = attrs.get("Calling-Station-Id")
    if csid:
        parts.append(f"csid={csid}")
    return " ".join(parts)
