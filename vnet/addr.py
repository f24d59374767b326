"""MAC and IPv4 conversions between the API's strings and the database's integers."""

from __future__ import annotations

import netaddr


class AddressError(ValueError):
    pass


def parse_mac(text: str) -> int:
    try:
        return int(netaddr.EUI(str(text).strip(), version=48))
    except (netaddr.AddrFormatError, TypeError, ValueError) as exc:
        raise AddressError(f"not a MAC address: {text!r}") from exc


def format_mac(value: int) -> str:
    return ":".join(f"{(value >> shift) & 0xFF:02x}" for shift in range(40, -8, -8))


def parse_ipv4(text: str) -> int:
    try:
        return int(netaddr.IPAddress(str(text).strip(), version=4, flags=netaddr.INET_PTON))
    except (netaddr.AddrFormatError, TypeError, ValueError) as exc:
        raise AddressError(f"not an IPv4 address: {text!r}") from exc


def format_ipv4(value: int) -> str:
    return str(netaddr.IPAddress(value, version=4))


def network_bounds(network: int, prefix: int) -> tuple[int, int]:
    """First and last address of network/prefix (network and broadcast addresses)."""
    size = 1 << (32 - prefix)
    return network, network + size - 1
