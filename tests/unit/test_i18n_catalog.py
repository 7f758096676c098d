"""The Dutch catalog is complete: every message the code marks (`N_`, `_t`) is in
`app/locales/messages.pot` and has a Dutch translation that is neither empty nor fuzzy and
uses the same placeholders."""

import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from app.core.errors import CATALOGUE
from app.core.field_messages import TYPE_TEMPLATES, field_text
from app.core.i18n import LOCALES, Message, _t, catalog, negotiate, translate

ROOT = Path(__file__).resolve().parents[2]


def marked_messages() -> set[str]:
    """What `make i18n` extracts: every string passed to `N_` or `_t` under app/."""
    found = extract_from_dir(
        ROOT / "app",
        method_map=[("**.py", "python")],
        keywords={"N_": None, "_t": (1,)},
    )
    return {
        message
        for _file, _line, message, _comments, _context in found
        if isinstance(message, str) and message
    }


def fields(text: str) -> list[tuple[str, str | None, str | None]]:
    """The `str.format` fields of `text`: name, format spec and conversion."""
    return sorted(
        (name, spec, conversion)
        for _literal, name, spec, conversion in string.Formatter().parse(text)
        if name is not None
    )


@pytest.fixture(scope="module")
def dutch() -> Catalog:
    loaded = catalog("nl")
    assert loaded is not None, "app/locales/nl/LC_MESSAGES/messages.po is missing"
    return loaded


def test_every_marked_message_has_a_dutch_translation(dutch: Catalog) -> None:
    marked = marked_messages()
    assert len(marked) > 150  # the extraction found the messages at all
    untranslated = sorted(
        text
        for text in marked
        if (entry := dutch.get(text)) is None or not entry.string or entry.fuzzy
    )
    assert untranslated == [], "run `make i18n` and translate these in the .po"


# pydantic's English-only context (its reason, a class or type name): the Dutch may omit it.
OPTIONAL_FIELDS = {"error", "class_name", "field_type"}


def test_translations_keep_the_placeholders(dutch: Catalog) -> None:
    wrong = []
    for entry in dutch:
        if not entry.id or not entry.string:
            continue
        english, translated = fields(str(entry.id)), fields(str(entry.string))
        kept = [field for field in english if field[0] not in OPTIONAL_FIELDS]
        if not set(kept) <= set(translated) or not set(translated) <= set(english):
            wrong.append((entry.id, entry.string))
    assert wrong == []


def test_the_template_is_up_to_date() -> None:
    with (LOCALES / "messages.pot").open("rb") as pot:
        template = {str(m.id) for m in read_po(pot) if m.id}
    assert template == marked_messages(), "run `make i18n`"


def test_every_title_and_field_type_is_translated() -> None:
    for text in [error.title for error in CATALOGUE] + list(TYPE_TEMPLATES.values()):
        assert translate(text, "nl") != text, text


def test_a_message_is_english_until_shown_in_dutch() -> None:
    nested = _t(
        "Process {process_id}: {detail}",
        process_id=7,
        detail=_t("Voting opens at {opens}.", opens="2030-01-01"),
    )
    assert str(nested) == "Process 7: Voting opens at 2030-01-01."
    assert nested.text("nl") == "Traject 7: Het stemmen begint op 2030-01-01."
    assert isinstance(nested, Message)


def test_an_unknown_message_stays_english() -> None:
    assert translate("Nothing like this is in the catalog.", "nl") == (
        "Nothing like this is in the catalog."
    )
    # A pydantic type we do not cover keeps pydantic's words.
    assert field_text("Some new pydantic message", "brand_new_type", None, "nl") == (
        "Some new pydantic message"
    )


def test_negotiation() -> None:
    assert negotiate("nl-BE") == "nl"
    assert negotiate("de, nl;q=0.2") == "nl"
    assert negotiate("en, nl;q=0.9") == "en"
    assert negotiate("NL;Q=0.5") == "nl"
    assert negotiate("nl;q=1.5") == "en"  # an invalid q-value is not a preference
    assert negotiate(None) == "en"
