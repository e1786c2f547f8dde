"""National identifiers the `national_id` category can look for.

Each entry is a candidate regular expression, which finds a span shaped like the
identifier (without word boundaries: the finder checks those, since a regex that
starts with a look-behind is scanned 5x slower), and the python-stdnum module whose
`is_valid` checks its checksum or structure. Only a span that passes both is taken:
the regex alone would catch many order numbers. Modules are imported when a config
names them, never before.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

# name in config -> (candidate regex, stdnum module)
NATIONAL_IDS: dict[str, tuple[str, str]] = {
    # US Social Security number: 123-45-6789 (dashed form only: bare 9 digits are too common).
    "us.ssn": (r"\d{3}-\d{2}-\d{4}", "stdnum.us.ssn"),
    # UK NHS number: 943 476 5919 (mod-11 check).
    "gb.nhs": (r"\d{3}[ -]?\d{3}[ -]?\d{4}", "stdnum.gb.nhs"),
    # German tax id (Steuer-IdNr): 11 digits, optionally grouped.
    "de.idnr": (r"\d{2} ?\d{3} ?\d{3} ?\d{3}", "stdnum.de.idnr"),
    # French social security number (NIR): 15 digits with spaces.
    "fr.nir": (r"[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}", "stdnum.fr.nir"),
    # Spanish DNI / NIE: 12345678Z, X1234567L.
    "es.dni": (r"\d{8}-?[A-Z]", "stdnum.es.dni"),
    "es.nie": (r"[XYZ]-?\d{7}-?[A-Z]", "stdnum.es.nie"),
    # Italian codice fiscale: RSSMRA85T10A562S.
    "it.codicefiscale": (r"[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]", "stdnum.it.codicefiscale"),
    # Dutch BSN: 9 digits (11-test).
    "nl.bsn": (r"\d{4}\.?\d{2}\.?\d{3}", "stdnum.nl.bsn"),
    # Swedish personnummer: YYMMDD-NNNN.
    "se.personnummer": (r"(?:\d{2})?\d{6}[-+]\d{4}", "stdnum.se.personnummer"),
    # Finnish HETU: 131052-308T.
    "fi.hetu": (r"\d{6}[-+A]\d{3}[0-9A-Y]", "stdnum.fi.hetu"),
    # Danish CPR: 211062-5629.
    "dk.cpr": (r"\d{6}-?\d{4}", "stdnum.dk.cpr"),
    # Polish PESEL: 11 digits.
    "pl.pesel": (r"\d{11}", "stdnum.pl.pesel"),
    # Indian Aadhaar: 12 digits, often grouped 4-4-4 (Verhoeff check).
    "in_.aadhaar": (r"\d{4} ?\d{4} ?\d{4}", "stdnum.in_.aadhaar"),
    # Canadian SIN: 046 454 286.
    "ca.sin": (r"\d{3}[ -]?\d{3}[ -]?\d{3}", "stdnum.ca.sin"),
}


def validator(name: str) -> Callable[[str], bool]:
    """The stdnum `is_valid` for a national id named in config."""
    module = importlib.import_module(NATIONAL_IDS[name][1])
    check: Callable[[str], bool] = module.is_valid
    return check
