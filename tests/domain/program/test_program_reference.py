"""docs/program.md, the program file's reference: every key of the model is on it (and
none that the model no longer has), each with a meaning and an example, the page is what
the generator prints from the model today, and its examples make a valid program."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel

from domain.program import reference
from domain.program.config import Program

PAGE = Path(__file__).resolve().parents[3] / "docs" / "program.md"
README = Path(__file__).resolve().parents[3] / "README.md"


def _models_in(annotation: Any) -> list[tuple[type[BaseModel], str]]:
    """The models a field's type holds, with how a key below it is written."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _models_in(get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, "")]
    if origin is list:
        return [(m, "[]" + reach) for m, reach in _models_in(get_args(annotation)[0])]
    if origin is dict:
        return [(m, ".<activity>" + reach) for m, reach in _models_in(get_args(annotation)[1])]
    return []


def model_keys(model: type[BaseModel] = Program, prefix: str = "") -> dict[str, Any]:
    """Every key the program file may hold, walked through the nested models: path -> FieldInfo."""
    keys = {}
    for name, info in model.model_fields.items():
        keys[prefix + name] = info
        for sub, reach in _models_in(info.annotation):
            keys |= model_keys(sub, f"{prefix}{name}{reach}.")
    return keys


def page_keys(text: str) -> set[str]:
    return set(re.findall(r"^\| `([^`]+)` \|", text, flags=re.MULTILINE))


def test_every_key_of_the_model_is_on_the_page_and_no_other():
    keys, page = set(model_keys()), page_keys(PAGE.read_text())
    assert keys - page == set(), "keys missing from docs/program.md: regenerate it"
    assert page - keys == set(), "docs/program.md documents keys the program no longer has"
    # the sections the README promises are there, nested ones included
    for key in ("notifications.quiet_hours.start", "notifications.location_cooldown_hours", "stores[].radius_meters"):
        assert key in page
    assert {"activities.<activity>.per_day", "bonuses.referrer", "bonuses.referee", "tiers[].threshold"} <= page


def test_every_key_has_a_meaning_and_every_value_an_example():
    for key, info in model_keys().items():
        assert info.description and len(info.description) > 8, f"{key}: no description"
        if not _models_in(info.annotation):
            assert info.examples, f"{key}: no example"


def test_the_page_is_what_the_model_says_today():
    assert PAGE.read_text() == reference.render(), (
        "docs/program.md is stale: python -m domain.program.reference > docs/program.md"
    )


def test_the_examples_on_the_page_make_a_valid_program():
    blocks = re.findall(r"```toml\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)
    assert len(blocks) == len(reference.sections())
    program = Program.model_validate(tomllib.loads("\n".join(blocks)))
    assert program.notifications.quiet_hours.start.hour == 21
    assert program.stores[0].key == "paris-marais"
    assert program.activities["survey"].lifetime == 12
    assert program.earning.promotions[0].weekdays == ["tue"]


def test_the_readme_links_the_reference():
    assert "(docs/program.md)" in README.read_text()
