"""vnmgr.params: typed reads of form strings and JSON values, failures naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from vnet.errors import ApiError
from vnmgr.params import Params


def rejects(params: Params, method: str, name: str, *args: Any, status: int = 422) -> None:
    with pytest.raises(ApiError) as caught:
        getattr(params, method)(name, *args)
    assert (caught.value.status, caught.value.field) == (status, name)


def test_empty_and_null_values_count_as_absent_and_as_cleared() -> None:
    params = Params({"a": "", "b": None, "c": "x"})
    assert not params.has("a") and not params.has("b") and params.has("c")
    assert params.clears("a") and params.clears("b") and not params.clears("c")
    assert not params.clears("d")
    assert params.text("a") is None
    rejects(params, "text", "a", True)


def test_non_object_parameters_are_a_bad_request() -> None:
    with pytest.raises(ApiError) as caught:
        Params(["a"])  # type: ignore[arg-type]
    assert caught.value.status == 400


def test_text() -> None:
    params = Params({"s": "abc", "n": 5, "long": "x" * 256, "obj": {"a": 1}, "flag": True})
    assert params.text("s") == "abc" and params.text("n") == "5"
    rejects(params, "text", "long")
    rejects(params, "text", "obj")
    rejects(params, "text", "flag")
    rejects(Params({"s": "\ud800"}), "text", "s")  # a lone surrogate (JSON "\ud800")


@pytest.mark.parametrize(("raw", "expected"), [
    ("24", 24), (24, 24), ("0", 0), ("0x0000aaaaaaaaaaaa", 0xAAAAAAAAAAAA), ("0X1F", 31),
    (24.0, 24)])
def test_integer_accepts_decimal_hex_and_json_numbers(raw: Any, expected: int) -> None:
    assert Params({"n": raw}).integer("n") == expected


@pytest.mark.parametrize("raw", [
    "x", "1.5", True, "33", -1, 24.9, float("inf"), float("nan"),
    # What int() would take but a client cannot have meant: digit separators, padding,
    # non-ASCII digits, octal and binary prefixes, an ambiguous leading zero.
    "2_4", " 24", "24 ", "\u0662\u0664", "\uff12\uff14", "0o17", "0b11", "024", "+24", "0x"])
def test_integer_rejects_non_integers_and_out_of_range(raw: Any) -> None:
    rejects(Params({"n": raw}), "integer", "n", False, 0, 32)


@pytest.mark.parametrize(("raw", "expected"), [
    ("true", True), ("t", True), ("yes", True), ("y", True), ("1", True), (True, True),
    ("false", False), ("f", False), ("no", False), ("n", False), ("0", False),
    (False, False)])
def test_boolean_takes_openvnets_words(raw: Any, expected: bool) -> None:
    assert Params({"b": raw}).boolean("b") is expected


@pytest.mark.parametrize("raw", ["maybe", "on", "off", "TRUE", " true", "2", 1, 0])
def test_boolean_refuses_other_words(raw: Any) -> None:
    # sinatra-browse, which OpenVNet used, takes exactly the words above.
    rejects(Params({"b": raw}), "boolean", "b")


def test_boolean_default() -> None:
    assert Params({}).boolean("b", True) is True


@pytest.mark.parametrize(("raw", "expected"), [
    ("0x0000aaaaaaaaaaab", 0xAAAAAAAAAAAB), ("0000aaaaaaaaaaab", 0xAAAAAAAAAAAB),
    ("00:00:00:00:00:00:00:07", 7), ("00:00:AA:AA:AA:AA:AA:AB", 0xAAAAAAAAAAAB),
    ("229", 0x229), ("0xffffffffffffffff", 2**64 - 1), (229, 229)])
def test_dpid_forms_operators_copy_from_ovs(raw: Any, expected: int) -> None:
    # Always hexadecimal in text, as OpenVNet's `transform: :hex` and OVS's tools.
    assert Params({"dpid": raw}).dpid("dpid") == expected


@pytest.mark.parametrize("raw", [
    "0x10000000000000000", "00000000000000001", "00:00:00:07", "0:0:0:0:0:0:0:7", "zz",
    "0x", True, -1, 1.5, "0x 1", "0x0", 0, "00:00:00:00:00:00:00:00"])
def test_dpid_refuses_other_forms(raw: Any) -> None:
    rejects(Params({"dpid": raw}), "dpid", "dpid")


def test_choice() -> None:
    assert Params({}).choice("mode", ("vif", "host"), "vif") == "vif"
    assert Params({"mode": "host"}).choice("mode", ("vif", "host")) == "host"
    rejects(Params({"mode": "tap"}), "choice", "mode", ("vif", "host"))


@pytest.mark.parametrize("raw", ["10:54:FF:00:00:01", "10-54-ff-00-00-01", "1054.ff00.0001"])
def test_mac_formats(raw: str) -> None:
    assert Params({"mac": raw}).mac("mac") == 0x1054FF000001


@pytest.mark.parametrize("raw", ["10:54:ff:00:00", "zz:54:ff:00:00:01", "hello"])
def test_bad_mac(raw: str) -> None:
    rejects(Params({"mac": raw}), "mac", "mac")


def test_ipv4() -> None:
    assert Params({"ip": "10.0.0.1"}).ipv4("ip") == 0x0A000001
    for bad in ("10.0.0.256", "10.0.1", "::1", "a.b.c.d"):
        rejects(Params({"ip": bad}), "ipv4", "ip")


def test_new_uuid() -> None:
    assert Params({"uuid": "nw-test1"}).new_uuid("networks") == "nw-test1"
    generated = Params({}).new_uuid("interfaces")
    assert generated.startswith("if-") and len(generated) == 11
    for bad in ("nw-Test", "if-abc", "nw-", "nw_abc", "nw-a-b"):
        with pytest.raises(ApiError) as caught:
            Params({"uuid": bad}).new_uuid("networks")
        assert caught.value.field == "uuid"
