"""Security group rules: OpenVNet's text syntax, parsed once for vnmgr (validation) and
vna (flows).

A group's ``rules`` is text with one rule per line (commas also separate rules), each
``protocol:port:source``:

- protocol: ``tcp``, ``udp`` or ``icmp``;
- port: for tcp/udp a port 1-65535 or a range ``N-M`` (N <= M); for icmp ``-1`` (any
  type) or an ICMP type 0-255;
- source: an IPv4 address, a CIDR ``a.b.c.d/n`` (host bits are cleared, as OpenVNet's
  IPAddress did), or a security group uuid ``sg-...`` (that group's members' addresses).

``#`` starts a comment running to the end of the line; whitespace around a rule and empty
rules are ignored.  This is OpenVNet's ``Vnet::Helpers::SecurityGroup`` syntax (split on
commas and newlines, comments removed); it accepted any ICMP "port" and only 1-65535 for
tcp/udp.  Rules admit traffic *into* the group's members (ingress); see docs/api.md.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1}
# A group's rules become conjunction ids group_id * RULE_SLOTS + index (vna.features.acl),
# so a group holds at most RULE_SLOTS - 1 rules (index 0 is the group's isolation).
RULE_SLOTS = 1024
MAX_RULES = RULE_SLOTS - 1

_GROUP_UUID = re.compile(r"sg-[a-z0-9]{1,255}", re.ASCII)
_PORT = re.compile(r"[1-9][0-9]{0,4}", re.ASCII)


class RuleError(ValueError):
    """A rule that does not parse: `line` is its 1-based line number in the text, `rule`
    its text, `reason` what is wrong.  str() names all three."""

    def __init__(self, line: int, rule: str, reason: str) -> None:
        shown = rule if len(rule) <= 80 else rule[:77] + "..."
        super().__init__(f"line {line}: {shown!r}: {reason}")
        self.line, self.rule, self.reason = line, rule, reason


@dataclass(frozen=True)
class Rule:
    """One parsed rule.  port_min/port_max: tcp/udp destination ports (inclusive), or
    for icmp the type (both None: any type).  Exactly one of cidr ((network address,
    prefix length)) and group (a uuid) is set."""

    line: int
    text: str
    protocol: str
    port_min: int | None
    port_max: int | None
    cidr: tuple[str, int] | None = None
    group: str | None = None

    @property
    def ip_proto(self) -> int:
        return PROTOCOLS[self.protocol]


def split_rules(text: str | None) -> list[tuple[int, str]]:
    """(line number, rule text) of every non-empty rule, comments removed."""
    out = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        for part in line.split("#", 1)[0].split(","):
            if part.strip():
                out.append((number, part.strip()))
    return out


def _port(protocol: str, value: str) -> tuple[int | None, int | None]:
    if protocol == "icmp":
        if value == "-1":
            return None, None
        if value.isascii() and value.isdigit() and len(value) <= 3 and int(value) <= 255 \
                and (value == "0" or not value.startswith("0")):
            return int(value), int(value)
        raise ValueError("icmp takes -1 (any type) or an ICMP type 0-255")
    low, sep, high = value.partition("-")
    if not _PORT.fullmatch(low) or (sep and not _PORT.fullmatch(high)):
        raise ValueError(f"{protocol} takes a port 1-65535 or a range N-M")
    first, last = int(low), int(high) if sep else int(low)
    if last > 65535 or first > last:
        raise ValueError(f"{protocol} takes a port 1-65535 or a range N-M with N <= M")
    return first, last


def _source(value: str) -> tuple[tuple[str, int] | None, str | None]:
    if value.startswith("sg-"):
        if not _GROUP_UUID.fullmatch(value):
            raise ValueError(f"{value!r} is not a security group uuid")
        return None, value
    if not re.fullmatch(r"[0-9.]+(?:/(?:0|[1-9][0-9]?))?", value, re.ASCII):
        raise ValueError("source must be an IPv4 address, a CIDR or a security group uuid")
    try:
        net = ipaddress.IPv4Network(value, strict=False)
    except ValueError as exc:
        raise ValueError(f"source {value!r} is not an IPv4 address or CIDR: {exc}") from None
    return (str(net.network_address), net.prefixlen), None


def parse_rule(line: int, text: str) -> Rule:
    """One rule; raises RuleError."""
    parts = text.split(":")
    if len(parts) != 3:
        raise RuleError(line, text, "a rule is protocol:port:source")
    protocol, port, source = (p.strip() for p in parts)
    if protocol not in PROTOCOLS:
        raise RuleError(line, text, "protocol must be tcp, udp or icmp")
    try:
        port_min, port_max = _port(protocol, port)
        cidr, group = _source(source)
    except ValueError as exc:
        raise RuleError(line, text, str(exc)) from None
    return Rule(line, text, protocol, port_min, port_max, cidr, group)


def parse_rules(text: str | None) -> list[Rule]:
    """Every rule of a group's text, in order; raises RuleError for the first bad one
    (also when there are more than MAX_RULES).  Duplicates are kept (they are
    harmless: the same traffic is admitted twice)."""
    rules = [parse_rule(line, rule) for line, rule in split_rules(text)]
    if len(rules) > MAX_RULES:
        extra = rules[MAX_RULES]
        raise RuleError(extra.line, extra.text, f"a group holds at most {MAX_RULES} rules")
    return rules


def port_masks(first: int, last: int) -> list[tuple[int, int]]:
    """The (value, mask) pairs whose union is exactly the port range first..last (at most
    2 x 16 of them), for OpenFlow's masked tcp_dst/udp_dst matches."""
    out = []
    while first <= last:
        size = first & -first if first else 1 << 16
        while first + size - 1 > last:
            size >>= 1
        out.append((first, 0xFFFF & ~(size - 1)))
        first += size
    return out
