"""Source addresses: what counts as an address, how lists and networks match it.

Rules (SPEC §12): an IPv4-mapped IPv6 address is its IPv4 address; a zone index is dropped;
anything else that is not an address (a MAC, a host name, garbage) means "no address" and
is never resolved. A login with no address matches no CIDR, only the word `local`.
"""

from __future__ import annotations

import ipaddress

LOCAL = "local"
_MAX_TEXT = 100  # no address is longer; longer text is not parsed at all


def parse_address(text: str | None) -> str | None:
    """The canonical text of an IP address, or None when `text` is not one."""
    if not text or len(text) > _MAX_TEXT:
        return None
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """A CIDR network (a bare address is a /32 or /128), or None when `text` is not one."""
    if not text or len(text) > _MAX_TEXT:
        return None
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None
    if net.version == 6:
        mapped = net.network_address.ipv4_mapped
        if mapped is not None and net.prefixlen >= 96:
            return ipaddress.ip_network(f"{mapped}/{net.prefixlen - 96}", strict=False)
    return net


def normalise_entry(text: str) -> str | None:
    """An address-list entry in canonical form (`local` or a CIDR), or None if invalid."""
    if text.strip().lower() == LOCAL:
        return LOCAL
    net = parse_network(text)
    return None if net is None else str(net)


def matches(address: str | None, entries: tuple[str, ...] | list[str]) -> bool:
    """True when `address` (canonical or None) is covered by one of the list entries."""
    if address is None:
        return LOCAL in entries
    addr = ipaddress.ip_address(address)
    for entry in entries:
        if entry == LOCAL:
            continue
        net = parse_network(entry)
        if net is not None and net.version == addr.version and addr in net:
            return True
    return False


def network_key(address: str, group_networks: bool) -> str:
    """The key under which trackstat counts an address: itself, or its /24 or /64."""
    if not group_networks:
        return address
    prefix = 24 if ":" not in address else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def in_any(address: str | None, networks: tuple[str, ...]) -> bool:
    """True when `address` lies in one of `networks` (used for inside/outside)."""
    return address is not None and matches(address, networks)
