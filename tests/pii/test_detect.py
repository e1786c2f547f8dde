"""Detectors: what each category catches, and the false-positive table of docs/pii.md."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.pii import detect
from gateway.pii.detect import DetectorError, Detectors, Span
from gateway.pii.national import NATIONAL_IDS, validator
from gateway.pii.settings import CATEGORIES, PiiSettings

SETTINGS = PiiSettings.model_validate(
    {
        "default": dict.fromkeys(CATEGORIES, "pseudonymise"),
        "phone_regions": ["US", "GB", "DE"],
        "national_ids": ["us.ssn", "de.idnr", "gb.nhs"],
        "terms": {"client": ["Acme Corp", "Globex"], "project": ["Bluebird"]},
        "patterns": {"employee_id": r"EMP-[0-9]{6}"},
    }
)
DETECTORS = Detectors.build(SETTINGS)


def found(text: str) -> list[tuple[str, str]]:
    return [(s.category, text[s.start : s.end]) for s in DETECTORS.find(text, CATEGORIES, {})]


# (text, what must be found). Kept in step with the table in docs/pii.md.
CAUGHT = [
    ("mail al.smith+tag@mail.example.co.uk now", [("email", "al.smith+tag@mail.example.co.uk")]),
    ("path /home/x/zq.cc@example.org.txt", [("email", "zq.cc@example.org.txt")]),
    ("url https://ann@host.example.com/x", [("email", "ann@host.example.com")]),
    ("call +1 415-555-2671 today", [("phone", "+1 415-555-2671")]),
    ("call (415) 555-0132 today", [("phone", "(415) 555-0132")]),
    ("ring 020 7946 0018 in London", [("phone", "020 7946 0018")]),
    ("Berlin 030 901820", [("phone", "030 901820")]),
    ("intl +49 30 901820", [("phone", "+49 30 901820")]),
    ("card 4111 1111 1111 1111 exp", [("card", "4111 1111 1111 1111")]),
    ("card 5555555555554444.", [("card", "5555555555554444")]),
    ("(card 4111 1111 1111 1111)", [("card", "4111 1111 1111 1111")]),
    ("iban DE89 3704 0044 0532 0130 00 ok", [("iban", "DE89 3704 0044 0532 0130 00")]),
    ("iban GB82WEST12345698765432", [("iban", "GB82WEST12345698765432")]),
    ("ssn 536-90-4399", [("national_id", "536-90-4399")]),
    ("Steuer-ID 36 574 261 809", [("national_id", "36 574 261 809")]),
    ("from 192.168.1.20 and", [("ip", "192.168.1.20")]),
    ("v6 2001:db8::8a2e:370:7334 end", [("ip", "2001:db8::8a2e:370:7334")]),
    ("Acme Corp signed; acme corp too", [("terms", "Acme Corp"), ("terms", "acme corp")]),
    ("badge EMP-004211", [("patterns", "EMP-004211")]),
]

NOT_CAUGHT = [
    "Order #12345678 shipped",
    "order number 4821-5532-9911",
    "at 2026-12-02T04:23:37Z",
    "timestamp 1733112217 and 1733112217123",
    "released 2026-12-02 14:05:09",
    "version 1.2.3, 10.0.19041.1234 and v2.31.0",
    "build 20261202.3",
    "x = [1, 2, 3, 4, 5, 6, 7, 8]",
    "std::vector<int> v; a::b::c",
    "time 12:30:45 and 10:00",
    "sha 4111111111111112 fails Luhn",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "price 1,234,567.89 USD",
    "port 127.0.0.1:8443 is not 999.1.1.1",
    "Annual report by Globexia",
    "remote git@github.com:org/repo.git",
    "AcmeCorp",
    "ISBN 978-3-16-148410-0",
]


@pytest.mark.parametrize(("text", "expected"), CAUGHT)
def test_caught(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize("text", NOT_CAUGHT)
def test_not_taken_for_personal_data(text: str) -> None:
    got = [(c, v) for c, v in found(text) if c != "ip"]
    if "127.0.0.1" in text:
        # An address is an address; the out-of-range one is not.
        assert found(text) == [("ip", "127.0.0.1")]
    assert got == []


def test_only_wanted_categories_run() -> None:
    text = "alice@example.org +1 415-555-2671"
    spans = DETECTORS.find(text, ("phone",), {})
    assert [s.category for s in spans] == ["phone"]


def test_overlaps_keep_the_longer_span() -> None:
    settings = PiiSettings.model_validate(
        {"default": {"terms": "pseudonymise"}, "terms": {"a": ["Acme"], "b": ["Acme Corp"]}}
    )
    spans = Detectors.build(settings).find("to Acme Corp.", ("terms",), {})
    assert spans == [Span(3, 12, "terms", "B")]


def test_a_failing_detector_raises_detector_error_without_the_text() -> None:
    def broken(scan: object) -> list[Span]:
        raise ValueError("secret text alice@example.org")

    detectors = Detectors({"email": broken})
    with pytest.raises(DetectorError) as info:
        detectors.find("alice@example.org", ("email",), {})
    assert str(info.value) == "email"
    assert info.value.__cause__ is None


def test_libraries_load_only_for_categories_on() -> None:
    settings = PiiSettings.model_validate({"default": {"email": "mask"}})
    detectors = Detectors.build(settings)
    assert set(detectors._finders) == {"email"}


def test_phone_validation_is_bounded_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.pii import detect

    monkeypatch.setattr(detect, "PHONE_CALLS_MAX", 2)
    text = " ".join(f"+1 415-555-{n:04d}" for n in range(2670, 2676)) + " and 2026-12-02 10:00"
    memo: dict[str, object] = {}
    spans = DETECTORS.find(text, ("phone",), memo)
    assert memo["phone_calls"] == 2
    # Past the budget, phone-shaped candidates are taken (the safe side); dates are not.
    assert len(spans) == 6


@pytest.mark.parametrize("name", sorted(NATIONAL_IDS))
def test_every_listed_national_id_has_its_stdnum_check(name: str) -> None:
    is_valid = validator(name)
    assert is_valid("not an id at all") is False


_TEXT_NUMBER = re.compile(r"[+(0-9][ ().\-/0-9]{5,}[0-9)]")


def reference_numbers(text: str) -> list[tuple[int, int]]:
    """Number candidates the plain way (a regex over the text, `bounded`), as the detector
    found them before it searched the character classes."""
    out = []
    for m in _TEXT_NUMBER.finditer(text):
        value = m.group()
        if value[-1] == ")" and "(" not in value:
            value = value.rstrip(" ().-/")
        start, end = m.start(), m.start() + len(value)
        if len(value) >= 7 and detect.bounded(text, start, end, ".-/"):
            out.append((start, end))
    return out


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(["4", "15", "555", "2671", " ", "-", ".", "/", "+", "(", ")", "a", "Z",
                         "_", "é", ":"]), max_size=30,
    ).map("".join)
)  # fmt: skip
@example("++4444444")  # a "+" after a "+" does not begin a number
def test_number_candidates_are_the_plain_search_s(text: str) -> None:
    """The fast search (character classes, a literal-led regex, bounds read from the
    classes) finds what the plain one does, wherever a candidate could be anything: every
    candidate with 7 or more digits (phones, cards, ids and IPv4 all have them)."""

    def useful(spans: list[tuple[int, int]]) -> set[tuple[int, int]]:
        return {(a, b) for a, b in spans if sum(c.isdigit() for c in text[a:b]) >= 7}

    assert useful(detect.Scan(text, {}).numbers()) == useful(reference_numbers(text))
