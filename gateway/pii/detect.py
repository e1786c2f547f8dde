"""Detectors: spans of personal data in one string.

`Detectors.build(settings)` compiles what the config enables, once, at startup; the
libraries behind the categories (phonenumbers, python-stdnum, ahocorasick_rs) are
imported there and only for the categories some team turns on. `find(text, wanted)`
returns non-overlapping `Span`s, earliest first; where two overlap the longer wins.

Speed matters (target: 0.2 ms of CPU per 10 KB of prompt): every category is gated by
a cheap test on the text ('@' in text, a digit, ':') before any regex runs, and the
costly validators (phonenumbers, stdnum) only see the few candidate spans a regex found.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gateway.pii.national import NATIONAL_IDS, validator
from gateway.pii.settings import PiiSettings


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    category: str
    # Placeholder label, upper case: EMAIL, PHONE, ..., or a term list's / pattern's name.
    label: str


class DetectorError(Exception):
    """A detector failed: the request must be refused (fail closed). No content inside."""


# Every regex here starts with a character set, never a look-behind: sre then skips
# non-candidate positions in C (measured 10 KB of prose: 55 us vs 390 us with a
# leading look-behind). Word boundaries are checked in Python on the few matches.
_EMAIL = re.compile(r"[A-Za-z0-9][\w.%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,24}")
# Runs of digits and separators, 7 characters or more from the first digit: the candidates
# for phone and card numbers, national ids and IPv4 addresses (each then checked by its own
# rules). Searched in the text's character classes (`Scan.classes`: every digit is "0"),
# where a literal first character lets sre skip to candidates with its fast literal scan.
# PERF: a regex that starts with a character set costs ~5 ns per character of text
# whatever it finds: [+(0-9]... took 52 us per 10 KB, this one 24 (+4 for the classes);
# ending on a digit or ")" halves the matches Python must look at (112 -> 58). bench/pii.py.
_NUMBER = re.compile(rb"0[ ().\-/0]{5,}[0)]")
_NONDIGIT = re.compile(r"[^0-9]")
_IBAN = re.compile(r"[A-Z][A-Z][0-9][0-9](?: ?[A-Z0-9]){11,30}")
_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_IPV6 = re.compile(r"[0-9A-Fa-f:][0-9A-Fa-f:.]{2,44}")
_SEPARATORS = " ().-/"
# The character classes a Scan searches: digits "0", A-Z "A", a-z "a", the number
# separators and "+" as themselves, anything else "~" (non-ASCII included, one byte per
# character, so indexes are the text's).
_CLASS_TABLE = bytes(
    48 if 48 <= i <= 57 else 65 if 65 <= i <= 90 else 97 if 97 <= i <= 122
    else i if chr(i) in " ().-/+" else 126
    for i in range(256)
)  # fmt: skip
# Characters an address's local part may hold (ASCII): the backward scan from "@".
_LOCAL = [chr(i).isalnum() or chr(i) in "._%+-" for i in range(128)]
# A colon between hex digits: where an IPv6 address may be. A literal first character
# lets sre search with its fast literal scan instead of trying every position.
_V6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")
# A date (2026-11-28, 28.11.2026) or a number with a decimal part is no phone number.
_NOT_PHONE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{1,2}[./][0-9]{1,2}[./][0-9]{2,4}")

_LEADS = frozenset(b" ().-/+")  # may come before a number's first digit
_SEPARATING = frozenset(b" ().-/")  # inside a number; "+" only at its start
_PLUS = ord("+")
_STARTS = frozenset(b"+(")  # may begin a number
_CLOSE = ord(")")
_WORD = frozenset(b"0Aa")  # classes of ASCII letters and digits
_NOT_BEFORE = frozenset(b"0Aa.-/+")  # classes that join a number to what precedes it
_JOINS = frozenset(b".-/")
_OTHER = ord("~")  # the class of everything else (non-ASCII, "_", punctuation)
Finder = Callable[["Scan"], Iterable[Span]]
# phonenumbers calls per request; past it, phone-shaped candidates are taken as phones.
PHONE_CALLS_MAX = 2000


class Scan:
    """One string being searched, with what several detectors share (number candidates)."""

    __slots__ = ("_classes", "_numbers", "memo", "text")

    def __init__(self, text: str, memo: dict[str, Any]) -> None:
        self.text = text
        # Per request: the result of a costly check per candidate (a prompt repeats numbers).
        self.memo = memo
        self._numbers: list[tuple[int, int]] | None = None
        self._classes: bytes | None = None

    def classes(self) -> bytes:
        """The text's characters by class (see _CLASS_TABLE), index for index."""
        if self._classes is None:
            self._classes = self.text.encode("ascii", "replace").translate(_CLASS_TABLE)
        return self._classes

    def numbers(self) -> list[tuple[int, int]]:
        """(start, end) of each run of digits and separators, trimmed, at a word boundary."""
        if self._numbers is None:
            text = self.text
            classes = self.classes()
            out = []
            for m in _NUMBER.finditer(classes):
                start, end = m.span()
                if start and classes[start - 1] in _LEADS:
                    # A run may begin with "+" or "(" before its first digit ("+1 415...",
                    # "(415) 555..."): separators, and at most one "+" before them.
                    lead = start
                    while lead and classes[lead - 1] in _SEPARATING:
                        lead -= 1
                    if lead and classes[lead - 1] == _PLUS:
                        lead -= 1
                    while lead < start and classes[lead] not in _STARTS:
                        lead += 1
                    start = lead
                # A ")" that closes nothing in it is not part of it ("(call 555 0100)").
                if classes[end - 1] == _CLOSE and classes.find(b"(", start, end) < 0:
                    end = start + len(text[start:end].rstrip(" ().-/"))
                if end - start >= 7 and self._bounded(start, end):
                    out.append((start, end))
            self._numbers = out
        return self._numbers

    def _bounded(self, start: int, end: int) -> bool:
        """`bounded(text, start, end, ".-/")`, read from the classes where they decide.

        PERF: bytes indexing instead of str methods for the ~60 candidates of a 10 KB
        prompt: 59 -> ~50 us for numbers() (bench/pii.py). A non-ASCII or "_" neighbour
        (class "~") is looked up in the text, as `bounded` does."""
        classes, text = self._classes, self.text
        assert classes is not None
        if start:
            before = classes[start - 1]
            if before in _NOT_BEFORE or (before == _OTHER and _wordish(text[start - 1])):
                return False
        if end < len(classes):
            after = classes[end]
            if after in _WORD or (after == _OTHER and _wordish(text[end])):
                return False
            if after in _JOINS and end + 1 < len(classes):
                nxt = classes[end + 1]
                if nxt in _WORD or (nxt == _OTHER and text[end + 1].isalnum()):
                    return False
        return True


def _wordish(char: str) -> bool:
    return char.isalnum() or char == "_"


def bounded(text: str, start: int, end: int, joins: str = ".-/:") -> bool:
    """Not part of a longer word or number: "v1.2.3", "abc1234567" and "x-123" are not."""
    if start and (text[start - 1].isalnum() or text[start - 1] in "_.+-/"):
        return False
    if end < len(text):
        after = text[end]
        if after.isalnum() or after == "_":
            return False
        if after in joins and end + 1 < len(text) and text[end + 1].isalnum():
            return False
    return True


class Detectors:
    """The compiled detectors; immutable and shared by every request."""

    def __init__(self, finders: dict[str, Finder]) -> None:
        self._finders = finders

    @classmethod
    def build(cls, settings: PiiSettings) -> Detectors:
        on = {c for team in [None, *settings.teams] for c, m in settings.modes(team).items()
              if m != "off"}  # fmt: skip
        finders: dict[str, Finder] = {}
        if "email" in on:
            finders["email"] = _find_email
        if "phone" in on:
            finders["phone"] = _phone_finder(settings.phone_regions)
        if "card" in on:
            finders["card"] = _card_finder()
        if "iban" in on:
            finders["iban"] = _iban_finder()
        if "national_id" in on and settings.national_ids:
            finders["national_id"] = _national_finder(settings.national_ids)
        if "ip" in on:
            finders["ip"] = _find_ip
        if "terms" in on and settings.terms:
            finders["terms"] = _terms_finder(settings.terms)
        if "patterns" in on and settings.patterns:
            finders["patterns"] = _patterns_finder(settings.patterns)
        return cls(finders)

    def find(self, text: str, wanted: Iterable[str], memo: dict[str, Any]) -> list[Span]:
        spans: list[Span] = []
        scan = Scan(text, memo)
        for category in wanted:
            finder = self._finders.get(category)
            if finder is None:
                continue
            try:
                spans.extend(finder(scan))
            except Exception:
                # SECURITY: fail closed; the library's message may quote the text.
                raise DetectorError(category) from None
        if len(spans) > 1:
            spans = _non_overlapping(spans)
        return spans


def _non_overlapping(spans: list[Span]) -> list[Span]:
    spans.sort(key=lambda s: (s.start, s.start - s.end))
    out: list[Span] = []
    for span in spans:
        if out and span.start < out[-1].end:
            if span.end - span.start > out[-1].end - out[-1].start:
                out[-1] = span
            continue
        out.append(span)
    return out


def _find_email(scan: Scan) -> Iterable[Span]:
    text = scan.text
    at = text.find("@")
    out: list[Span] = []
    last_end = 0
    # PERF: from each "@" back to where the address can start, then one anchored match:
    # an unanchored search tries every letter of the text (10 KB: 0.4 ms -> ~5 us).
    while at >= 0:
        start = at
        while (
            start > max(last_end, at - 64)
            and _LOCAL[ord(text[start - 1]) & 0x7F]
            and (text[start - 1].isascii())
        ):
            start -= 1
        m = _EMAIL.match(text, start)
        while m is None and start < at:
            start += 1
            m = _EMAIL.match(text, start)
        if m is not None and _email_bounded(text, m.start(), m.end()):
            out.append(Span(m.start(), m.end(), "email", "EMAIL"))
            last_end = m.end()
        at = text.find("@", max(at + 1, last_end))
    return out


def _email_bounded(text: str, start: int, end: int) -> bool:
    """An address inside a path or a URL is still one ("/home/x/ann@example.org",
    "https://ann@example.org/"); one glued to a word ("xann@") or followed by ":path"
    (an SCM remote, "git@github.com:org/repo") is not."""
    if start and (text[start - 1].isalnum() or text[start - 1] == "_"):
        return False
    if end < len(text):
        after = text[end]
        if after.isalnum() or after == "_":
            return False
        if after == ":" and end + 1 < len(text) and text[end + 1].isalnum():
            return False
    return True


def _phone_finder(regions: list[str]) -> Finder:
    import phonenumbers

    matcher = phonenumbers.PhoneNumberMatcher
    leniency = phonenumbers.Leniency.VALID

    def find(scan: Scan) -> Iterable[Span]:
        text, memo = scan.text, scan.memo
        # By candidate text, for the request: a prompt repeats its numbers.
        seen: dict[str, list[tuple[int, int]]] = memo.setdefault("phone", {})
        out: list[Span] = []
        for start, end in scan.numbers():
            value = text[start:end]
            found = seen.get(value)
            if found is None:
                calls = memo.get("phone_calls", 0)
                if calls < PHONE_CALLS_MAX:
                    memo["phone_calls"] = calls + 1
                    found = _phones(matcher, leniency, value, regions)
                else:
                    # SECURITY: bounded CPU per request (22-35 us a call): past the budget a
                    # phone-shaped candidate is taken unvalidated. Over-redacting is the
                    # safe side; a prompt of a million numbers cannot stall the loop.
                    found = [(0, len(value))] if _phone_shaped(value) else []
                seen[value] = found
            if found:
                out.extend(Span(start + a, start + b, "phone", "PHONE") for a, b in found)
        return out

    return find


def _phone_shaped(value: str) -> bool:
    digits = len(_NONDIGIT.sub("", value))
    # E.164 allows 15 digits; a longer run is a card, an IBAN's digits or an id.
    if not 7 <= digits <= 15 or _NOT_PHONE.search(value):
        return False
    # 20261128.3, 1.5, 203.0.113.7: versions, decimals, addresses
    return "." not in value or all(2 <= len(g.strip(" ()-+")) <= 4 for g in value.split("."))


def _phones(matcher: Any, leniency: Any, value: str, regions: list[str]) -> list[tuple[int, int]]:
    if not _phone_shaped(value):
        return []
    if value.startswith("+"):
        # PERF: a +country number of at most 15 digits is one number or none: parsed and
        # validated directly, 22 us, not through the matcher's search, 35 us (bench/pii.py).
        # The matcher's other VALID checks (extension characters, a national prefix)
        # do not apply to it.
        import phonenumbers

        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(value, None)):
                return [(0, len(value))]
        except phonenumbers.NumberParseException:
            return []
    for region in regions:
        # The matcher on the candidate alone: on the whole text it costs ~1 ms per KB.
        found = [(m.start, m.end) for m in matcher(value, region, leniency, max_tries=8)]
        if found or value.startswith("+"):  # a +country number reads the same everywhere
            return found
    return []


def _card_finder() -> Finder:
    from stdnum import luhn

    def find(scan: Scan) -> Iterable[Span]:
        text = scan.text
        out = []
        for start, end in scan.numbers():
            if end - start < 13:
                continue
            value = text[start:end]
            if not value[0].isdigit() or any(c in value for c in "()./"):
                continue
            digits = _NONDIGIT.sub("", value)
            # Issuer ranges (2-9) and the Luhn check; "  " ends a number.
            if (
                13 <= len(digits) <= 19
                and digits[0] in "23456789"
                and "  " not in value
                and luhn.is_valid(digits)
            ):
                out.append(Span(start, end, "card", "CARD"))
        return out

    return find


def _iban_finder() -> Finder:
    from stdnum import iban

    def find(scan: Scan) -> Iterable[Span]:
        text = scan.text
        classes = scan.classes()
        out = []
        # PERF: where the classes read "AA00" (two capitals, two digits), not a character
        # set regex over the whole text: 10 KB, 50 -> ~3 us (bench/pii.py).
        at = classes.find(b"AA00")
        while at >= 0:
            m = _IBAN.match(text, at)
            if m is None:
                at = classes.find(b"AA00", at + 1)
                continue
            start = at
            value = m.group().rstrip()
            end = start + len(value)
            if bounded(text, start, end) and iban.is_valid(value):
                out.append(Span(start, end, "iban", "IBAN"))
                at = classes.find(b"AA00", end)
            else:
                at = classes.find(b"AA00", at + 1)
        return out

    return find


def _national_finder(names: list[str]) -> Finder:
    checks = []
    for name in names:
        pattern = NATIONAL_IDS[name][0]
        # An id of digits and separators only lies inside a number candidate: its regex
        # runs on those few spans, not on the whole text.
        inside_numbers = re.search(r"[A-Z]", pattern) is None
        checks.append((re.compile(pattern), validator(name), inside_numbers))

    def find(scan: Scan) -> Iterable[Span]:
        text = scan.text
        out = []
        for regex, is_valid, inside_numbers in checks:
            spans = scan.numbers() if inside_numbers else [(0, len(text))]
            for lo, hi in spans:
                for m in regex.finditer(text, lo, hi):
                    start, end = m.span()
                    if bounded(text, start, end) and is_valid(m.group()):
                        out.append(Span(start, end, "national_id", "NATIONAL_ID"))
        return out

    return find


def _find_ip(scan: Scan) -> Iterable[Span]:
    text, classes = scan.text, scan.classes()
    # By candidate text, for the request: a prompt repeats its numbers.
    found_ips: dict[str, list[tuple[int, int]]] = scan.memo.setdefault("ip", {})
    out: list[Span] = []
    # An IPv4 address is 7+ digits and dots: it is inside a number candidate (which is
    # bounded in the text as an address must be: "127.0.0.1:8443" is one and a port).
    for lo, hi in scan.numbers():
        if classes.find(b".", lo, hi) < 0:
            continue
        value = text[lo:hi]
        found = found_ips.get(value)
        if found is None:
            found = found_ips[value] = [
                m.span() for m in _IPV4.finditer(value)
                if bounded(value, m.start(), m.end(), ".-/") and _is_ip(m.group())
            ]  # fmt: skip
        if found:
            out.extend(Span(lo + a, lo + b, "ip", "IP") for a, b in found)
    seen = -1
    for hint in _V6_HINT.finditer(text):
        if hint.start() < seen:
            continue
        lo, hi = max(0, hint.start() - 40), min(len(text), hint.end() + 40)
        for m in _IPV6.finditer(text, lo, hi):
            start, end = m.span()
            value = m.group().rstrip(".")
            end = start + len(value)
            if (
                value.count(":") >= 2
                and any(c not in ":0" for c in value)
                and (start == 0 or not (text[start - 1].isalnum() or text[start - 1] == ":"))
                and (end == len(text) or not (text[end].isalnum() or text[end] == ":"))
                and _is_ip(value)
            ):
                out.append(Span(start, end, "ip", "IP"))
        seen = hi
    return out


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _terms_finder(lists: dict[str, list[str]]) -> Finder:
    import ahocorasick_rs

    words: list[str] = []
    labels: list[str] = []
    for label, terms in lists.items():
        for term in terms:
            words.append(term.lower())
            labels.append(label.upper())
    automaton: Any = ahocorasick_rs.AhoCorasick(
        words, matchkind=ahocorasick_rs.MatchKind.LeftmostLongest
    )

    def find(scan: Scan) -> Iterable[Span]:
        text = scan.text
        lowered = text.lower()
        # Case-insensitive only where lower-casing keeps every index (almost always).
        hay = lowered if len(lowered) == len(text) else text
        out = []
        for index, start, end in automaton.find_matches_as_indexes(hay):
            # Whole words only: "Ann" is not found in "Annual".
            if (start and hay[start - 1].isalnum()) or (end < len(hay) and hay[end].isalnum()):
                continue
            out.append(Span(start, end, "terms", labels[index]))
        return out

    return find


def _patterns_finder(patterns: dict[str, str]) -> Finder:
    compiled = [(re.compile(p), label.upper()) for label, p in patterns.items()]

    def find(scan: Scan) -> Iterable[Span]:
        return [
            Span(m.start(), m.end(), "patterns", label)
            for regex, label in compiled
            for m in regex.finditer(scan.text)
            if m.end() > m.start()
        ]

    return find
