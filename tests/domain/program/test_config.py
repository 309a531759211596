"""The program file: the demo program loads; a wrong one is refused with the file, the
key and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

import domain.program
from domain.program.config import ProgramError, load, parse

GOOD = Path(domain.program.__file__).parent / "demo.toml"


def test_the_demo_program_loads():
    p = load(None)
    assert p.currency == "EUR" and [t.key for t in p.tiers] == ["bronze", "silver", "gold"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('currency = "EUR"', 'currency = "EURO"'), "p.toml: program.currency: 'EURO' is not an ISO 4217 currency"),
        (("threshold = 1000", "threshold = 0"), "p.toml: tiers[1].threshold: must be greater than the previous"),
        (("months = 12", ""), "p.toml: expiry: months: required when policy is 'rolling'"),
        (("version = 1", "version = 7"), "p.toml: version: version 7 is not supported"),
        (("[cashback]", "[cashback]\nsurprise = 1"), "p.toml: cashback.surprise: Extra inputs are not permitted"),
        (("points_per_unit = 10", "points_per_unit = -1"), "p.toml: earning.points_per_unit: Input should be greater"),
        (('timezone = "Europe/Paris"', 'timezone = "Mars/Base"'), "p.toml: program.timezone: 'Mars/Base' is not"),
        (('name = "Silver"', 'name = "Silver"\nrank = 0'), "p.toml: not valid TOML"),
    ],
)
def test_program_errors_name_the_file_the_key_and_what_is_wrong(change, expected):
    old, new = change
    text = GOOD.read_text()
    assert old in text
    with pytest.raises(ProgramError) as error:
        parse(text.replace(old, new, 1), "p.toml")
    assert expected in str(error.value)


def test_a_missing_program_file_is_a_clear_error(tmp_path):
    with pytest.raises(ProgramError, match="cannot read the program file"):
        load(tmp_path / "nope.toml")
