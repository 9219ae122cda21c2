"""Source addresses: what counts as an address, how lists and networks match it.

Rules (SPEC §12): an IPv4-mapped IPv6 address is its IPv4 address; a zone index is dropped;
anything else that is not an address (a MAC, a host name, garbage) means "no address" and
is never resolved. A login with no address matches no CIDR, only the word `local`.

The login path parses with the C functions inet_pton/inet_ntop (`_socket`, ~0.2 ms to import)
rather than `ipaddress` (~1.5 ms, paid by every PAM login process: shared/PERF.md). Forms
that only `ipaddress` knows (a netmask after the slash, IPv6 text holding a dotted quad) fall
back to it, and the admin side's `parse_network` returns `ipaddress` networks as before;
tests/unit/test_addresses_fast.py checks both ways agree.
"""

from __future__ import annotations

import _socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ipaddress

LOCAL = "local"
_MAX_TEXT = 100  # no address is longer; longer text is not parsed at all
_MAPPED_PREFIX = b"\0" * 10 + b"\xff\xff"
_BITS = {4: 32, 6: 128}
_FAMILY = {4: _socket.AF_INET, 6: _socket.AF_INET6}


def _packed(text: str) -> bytes | None:
    """The address's bytes (4 or 16), or None when inet_pton refuses the text."""
    try:
        return _socket.inet_pton(_socket.AF_INET6 if ":" in text else _socket.AF_INET, text)
    except (OSError, ValueError, TypeError):
        return None


def _text(packed: bytes) -> str:
    """Canonical text of 4 or 16 address bytes, as `ipaddress` writes it."""
    if len(packed) == 4:
        return _socket.inet_ntop(_socket.AF_INET, packed)
    text = _socket.inet_ntop(_socket.AF_INET6, packed)
    if "." in text:  # glibc writes ::a.b.c.d forms that ipaddress writes as hex
        import ipaddress

        return str(ipaddress.IPv6Address(packed))
    return text


def parse_address(text: str | None) -> str | None:
    """The canonical text of an IP address, or None when `text` is not one."""
    if not text or len(text) > _MAX_TEXT:
        return None
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    packed = _packed(text.split("%", 1)[0])
    if packed is None:
        return None
    if len(packed) == 16 and packed[:12] == _MAPPED_PREFIX:
        packed = packed[12:]
    return _text(packed)


def _cidr(text: str) -> tuple[int, int, int] | None:
    """(version, network as an integer, prefix length) of a CIDR text, or None."""
    if not text or len(text) > _MAX_TEXT:
        return None
    address, slash, prefix_text = text.strip().partition("/")
    packed = _packed(address)
    if packed is not None and (not slash or (prefix_text.isascii() and prefix_text.isdigit())):
        version = 4 if len(packed) == 4 else 6
        prefix = int(prefix_text) if slash else _BITS[version]
        if prefix <= _BITS[version] and (not slash or prefix_text == str(prefix)):
            value = int.from_bytes(packed, "big")
            if version == 6 and packed[:12] == _MAPPED_PREFIX and prefix >= 96:
                version, prefix, value = 4, prefix - 96, value & 0xFFFFFFFF
            shift = _BITS[version] - prefix
            return version, (value >> shift) << shift, prefix
    net = parse_network(text)  # the forms only ipaddress knows (e.g. a netmask)
    if net is None:
        return None
    return net.version, int(net.network_address), net.prefixlen


def is_network(text: str) -> bool:
    """True when `text` is a CIDR network or a bare address."""
    return _cidr(text) is not None


def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """A CIDR network (a bare address is a /32 or /128) as an `ipaddress` network, or None.

    For the admin side, which wants `ipaddress` objects; the login path uses `_cidr`.
    """
    import ipaddress

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
    packed = _packed(address)
    if packed is None:
        return False
    version = 4 if len(packed) == 4 else 6
    value = int.from_bytes(packed, "big")
    for entry in entries:
        if entry == LOCAL:
            continue
        net = _cidr(entry)
        if net is not None and net[0] == version:
            shift = _BITS[version] - net[2]
            if (value >> shift) << shift == net[1]:
                return True
    return False


def network_key(address: str, group_networks: bool) -> str:
    """The key under which trackstat counts an address: itself, or its /24 or /64."""
    if not group_networks:
        return address
    version = 6 if ":" in address else 4
    prefix = 24 if version == 4 else 64
    _version, value, _prefix = _cidr(f"{address}/{prefix}") or (version, 0, prefix)
    return f"{_text(value.to_bytes(_BITS[version] // 8, 'big'))}/{prefix}"


def in_any(address: str | None, networks: tuple[str, ...]) -> bool:
    """True when `address` lies in one of `networks` (used for inside/outside)."""
    return address is not None and matches(address, networks)
