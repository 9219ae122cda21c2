"""Pure parts of the module: what is taken from a request's attribute list."""

from __future__ import annotations

from radius_hook import request as rq

ORDER = ("calling_station_id", "framed_ip_address", "nas_ip_address")


def test_pairs_takes_first_value_and_accepts_both_call_shapes():
    items = (("User-Name", "a"), ("User-Name", "b"), ("Calling-Station-Id", "10.0.0.1"))
    assert rq.pairs({"request": items, "config": None}) == {
        "User-Name": "a",
        "Calling-Station-Id": "10.0.0.1",
    }
    assert rq.pairs({"request": items, "config": None}, "config") == {}
    assert rq.pairs(items)["User-Name"] == "a"  # pass_all_vps_dict off


def test_source_address_order_and_fallbacks():
    attrs = {
        "Calling-Station-Id": "00-11-22-33-44-55",
        "Framed-IP-Address": "10.0.0.9",
        "NAS-IP-Address": "192.0.2.1",
    }
    assert rq.source_address(attrs, ORDER) == ("10.0.0.9", "10.0.0.9")
    assert rq.source_address(attrs, ("nas_ip_address",)) == ("192.0.2.1", "192.0.2.1")
    assert rq.source_address({"Calling-Station-Id": "::ffff:10.1.1.1"}, ORDER)[0] == "10.1.1.1"
    assert rq.source_address({"Calling-Station-Id": "fe80::1%eth0"}, ORDER)[0] == "fe80::1"
    # No address anywhere: none, and the MAC is kept as given.
    assert rq.source_address({"Calling-Station-Id": "aa:bb"}, ORDER) == (None, "aa:bb")
    assert rq.source_address({}, ORDER) == (None, None)


def test_session_type():
    assert rq.session_type({"NAS-Port-Type": "Virtual"}, ()) == "vpn"
    assert rq.session_type({"NAS-Port-Type": "Wireless-802.11"}, ()) == "wifi"
    assert rq.session_type({"NAS-Port-Type": "Ethernet"}, ()) == "lan"
    assert rq.session_type({"NAS-Port-Type": "Async"}, (("Async", "dialup"),)) == "dialup"
    assert rq.session_type({"NAS-Port-Type": "Virtual"}, (("Virtual", "ipsec"),)) == "ipsec"
    assert rq.session_type({"NAS-Port-Type": "ISDN"}, ()) == "isdn"
    assert rq.session_type({}, ()) == "radius"


def test_nas_and_client_detail():
    attrs = {"NAS-Identifier": "ap-7", "NAS-IP-Address": "192.0.2.5", "Calling-Station-Id": "x"}
    assert rq.nas_of(attrs) == "192.0.2.5"
    assert rq.nas_of({"NAS-Identifier": "ap-7"}) == "ap-7"
    assert rq.client_detail(attrs) == "nas=ap-7 csid=x"


def test_user_and_facts_take_first_values_and_skip_odd_items():
    items = (
        ("User-Name", "a"),
        ("Calling-Station-Id", "10.0.0.1"),
        ("User-Name", "b"),
        ("Calling-Station-Id", "10.0.0.2"),
        ("NAS-Port-Type", "Virtual"),
        ("odd",),
        ("NAS-IP-Address", "192.0.2.1", "extra"),
    )
    assert rq.user_name({"request": items}) == "a"
    facts = rq.fact_key(rq.pairs({"request": items}))
    assert facts == rq.fact_key({"Calling-Station-Id": "10.0.0.1", "NAS-Port-Type": "Virtual"})
    assert facts[0] == "10.0.0.1" and facts[-1] == "Virtual"
    assert rq.user_name({"request": None}) is None
    assert rq.fact_key(rq.pairs({"request": None})) == (None,) * len(rq.FACT_ATTRIBUTES)
    assert rq.user_name(items[:2]) == "a"
    assert rq.fact_key(rq.pairs(items[:2])) == rq.fact_key({"Calling-Station-Id": "10.0.0.1"})


def test_outer_eap_is_an_eap_request_not_sent_through_a_tunnel():
    outer = (("User-Name", "anonymous"), ("EAP-Message", "0x0201"))
    assert rq.outer_eap(rq.pairs({"request": outer}))
    assert rq.outer_eap(rq.pairs(outer))  # pass_all_vps_dict off
    # PEAP's inner requests carry EAP too, and rlm_eap's mark; TTLS/PAP's no EAP at all.
    assert not rq.outer_eap(
        rq.pairs({"request": outer + (("FreeRADIUS-Proxied-To", "127.0.0.1"),)})
    )
    assert not rq.outer_eap(rq.pairs({"request": (("User-Name", "alice"), ("User-Password", "x"))}))
    assert not rq.outer_eap(rq.pairs({"request": None}))
    # A request proxied to this server names its home server there, never 127.0.0.1.
    assert rq.outer_eap(rq.pairs({"request": outer + (("FreeRADIUS-Proxied-To", "192.0.2.9"),)}))
