"""Dutch and English for what a client reads: gettext catalogs through Babel.

The source language is English: code writes English sentences and marks them, `N_("...")`
for a fixed text (an error's title) and `_t("... {name} ...", name=value)` for a sentence
with named placeholders (an error's detail). `_t` returns a `Message`, which stays English
for logs and `str()`, and is put into another language only where a response is made
(`translate`, `render_text`). `_` is not used: several modules use it as a throwaway name.

The Dutch translations live in `app/locales/nl/LC_MESSAGES/messages.po`, read once at import
with `babel.messages.pofile` (no compiled `.mo` and no install step). A message without a
usable Dutch translation (missing, empty or fuzzy) is shown in English, and
`tests/unit/test_i18n_catalog.py` fails on it. `make i18n` extracts the marked messages into
`app/locales/messages.pot` and updates the `.po`.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

Language = Literal["nl", "en"]
LANGUAGES: tuple[Language, ...] = ("nl", "en")
DEFAULT_LANGUAGE: Language = "en"
LOCALES = Path(__file__).resolve().parent.parent / "locales"


class Translatable(Protocol):
    def text(self, language: Language) -> str: ...


def N_(text: str) -> str:  # noqa: N802 - the gettext convention for a no-op marker
    """Marks `text` for extraction; it is translated where it is shown."""
    return text


@dataclass(frozen=True)
class Message:
    """An English sentence with named `str.format` placeholders, translated when shown."""

    template: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def text(self, language: Language) -> str:
        values = {
            key: value.text(language) if hasattr(value, "text") else value
            for key, value in self.params.items()
        }
        return translate(self.template, language).format(**values)

    def __str__(self) -> str:
        return self.text(DEFAULT_LANGUAGE)


def _t(template: str, **params: Any) -> Message:
    """A translatable sentence; `params` fill its `{name}` placeholders (a `Message` among
    them is translated too)."""
    return Message(template, params)


def render_text(text: "str | Translatable", language: Language) -> str:
    """A message in `language`; a plain string is looked up as a message id as it is."""
    if isinstance(text, str):
        return translate(text, language)
    return text.text(language)


@cache
def catalog(language: Language) -> Catalog | None:
    path = LOCALES / language / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return None
    with path.open("rb") as po:
        return read_po(po, locale=language)


@cache
def _translations(language: Language) -> dict[str, str]:
    found = catalog(language)
    if found is None:
        return {}
    return {
        str(m.id): str(m.string)
        for m in found
        if m.id and isinstance(m.id, str) and isinstance(m.string, str) and m.string
        if not m.fuzzy
    }


def translate(text: str, language: Language) -> str:
    """`text` in `language`, or as it is when the catalog has no translation of it."""
    if language == DEFAULT_LANGUAGE:
        return text
    return _translations(language).get(text, text)


def has_translation(text: str, language: Language) -> bool:
    return text in _translations(language)


def negotiate(accept_language: str | None, default: Language = DEFAULT_LANGUAGE) -> Language:
    """The language of a response by `Accept-Language` and its q-values: Dutch when `nl`
    (`nl-NL`, `nl-BE`, ...) ranks above every other supported language, English when `en`
    does, else `default` (English, the API's own source language, unless a caller says
    otherwise). The one parser of the header: problems, mail language, the results page."""
    best: tuple[float, int, Language] | None = None
    for position, part in enumerate((accept_language or "").split(",")):
        tag, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _sep, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.lower().split("-")[0]
        if primary not in LANGUAGES or not 0 < quality <= 1:
            continue
        candidate = (-quality, position, primary)
        if best is None or candidate < best:
            best = (-quality, position, "nl" if primary == "nl" else "en")
    return best[2] if best else default
