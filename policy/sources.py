"""Where a person logs in from (SPEC §4 "source"), for smart lockout and address blocks.

An Attempt's `source` is what the adapter knew of the person's place, never of a server
relaying them: on PAM the canonical PAM_RHOST address, else `local`; on RADIUS the
Calling-Station-Id (its canonical address, or the station itself: a MAC lower case and
`-` separated), else Framed-IP-Address, never the NAS's own address; None when nothing
says. From it:
- `familiar_key`: what a success makes familiar (an address's /24 or /64, a station);
- `block_key`: what an address block takes (an IPv4 address, an IPv6 /64), only addresses.
Local logins and logins with no known source are always familiar (a source nobody can
tell apart from the owner's behaves as without smart lockout: the account lock counts it).
"""

from __future__ import annotations

from policy.addresses import LOCAL, network_key, parse_address

_HEX = frozenset("0123456789abcdef")
_MAX_STATION = 64


def pam_source(address: str | None) -> str:
    """A PAM login's source: its canonical address, else `local`."""
    return address if address is not None else LOCAL


def radius_source(station: str | None, framed: str | None) -> str | None:
    """A RADIUS request's source from Calling-Station-Id and Framed-IP(v6)-Address."""
    if station:
        address = parse_address(station)
        if address is not None:
            return address
        mac = normal_mac(station)
        if mac is not None:
            return mac
        text = station.strip()
        if text:
            return text[:_MAX_STATION]
    if framed:
        return parse_address(framed)
    return None


def normal_mac(text: str) -> str | None:
    """A MAC address as aa-bb-cc-dd-ee-ff, from the forms NASes send (with `-`, `:` or
    `.` between groups, or none), or None when `text` is not one."""
    digits = "".join(c for c in text.strip().lower() if c not in "-:.")
    if len(digits) != 12 or not _HEX.issuperset(digits):
        return None
    return "-".join(digits[i : i + 2] for i in range(0, 12, 2))


def _is_address(source: str) -> bool:
    return parse_address(source) == source


def familiar_key(source: str | None) -> str | None:
    """What a success from `source` makes familiar: an address's network (IPv4 /24, IPv6
    /64), a station as it is; None for a source that is always familiar."""
    if source is None or source == LOCAL:
        return None
    if _is_address(source):
        return network_key(source, True)
    return source


def block_key(source: str | None) -> str | None:
    """What an address block takes for `source`: an IPv4 address itself, an IPv6 address's
    /64; None for anything else (a station, `local`, nothing)."""
    if source is None or source == LOCAL or not _is_address(source):
        return None
    return network_key(source, True) if ":" in source else source


def is_familiar(source: str | None, familiar: tuple[str, ...] | list[str]) -> bool:
    """Whether `source` is familiar, given the user's familiar keys."""
    key = familiar_key(source)
    return key is None or key in familiar
