"""Network values as ig prints them: IP addresses (Go's ``net.IP`` text) and IP protocol
numbers (IANA's keywords)."""

from __future__ import annotations

import ipaddress

_V4_MAPPED = b"\0" * 10 + b"\xff\xff"

#: IANA "Assigned Internet Protocol Numbers", keyword column (the numbers a socket,
#: packet or route of these gadgets may carry; any other one prints as proto#N)
PROTOCOLS = {
    0: "HOPOPT", 1: "ICMP", 2: "IGMP", 3: "GGP", 4: "IPv4", 5: "ST", 6: "TCP", 7: "CBT",
    8: "EGP", 9: "IGP", 12: "PUP", 17: "UDP", 20: "HMP", 22: "XNS-IDP", 27: "RDP",
    29: "ISO-TP4", 33: "DCCP", 36: "XTP", 37: "DDP", 41: "IPv6", 43: "IPv6-Route",
    44: "IPv6-Frag", 45: "IDRP", 46: "RSVP", 47: "GRE", 50: "ESP", 51: "AH", 55: "MOBILE",
    58: "IPv6-ICMP", 59: "IPv6-NoNxt", 60: "IPv6-Opts", 88: "EIGRP", 89: "OSPFIGP",
    94: "IPIP", 97: "ETHERIP", 98: "ENCAP", 103: "PIM", 108: "IPComp", 112: "VRRP",
    115: "L2TP", 124: "ISIS over IPv4", 132: "SCTP", 133: "FC", 135: "Mobility Header",
    136: "UDPLite", 137: "MPLS-in-IP", 139: "HIP", 140: "Shim6", 141: "WESP", 142: "ROHC",
    143: "Ethernet", 144: "AGGFRAG", 145: "NSH", 255: "Reserved",
}


def ip_text(raw: bytes, version: int) -> str:
    """The address of a ``union gadget_ip_addr_t`` (16 bytes) for IP ``version``: dotted
    quad for 4 (the first 4 bytes), RFC 5952 for 6 with an IPv4-mapped address as a
    dotted quad (as Go writes it); "" for any other version."""
    if version == 4:
        return str(ipaddress.IPv4Address(raw[:4]))
    if version == 6:
        if raw[:12] == _V4_MAPPED:
            return str(ipaddress.IPv4Address(raw[12:16]))
        return str(ipaddress.IPv6Address(raw[:16]))
    return ""


def proto_name(number: int) -> str:
    """IANA's keyword of an IP protocol number, or ``proto#N``."""
    return PROTOCOLS.get(number, f"proto#{number}")


__all__ = ["PROTOCOLS", "ip_text", "proto_name"]
