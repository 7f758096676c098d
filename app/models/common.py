"""Building blocks of the API shapes: strict input models and bounded field types.

Every input model forbids unknown fields; every string is bounded and refuses NUL
characters; every integer fits a 32-bit column (larger values are a 422, never a 500).
"""

import unicodedata
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.core.i18n import N_
from app.core.limits import INT32_MAX

T = TypeVar("T")


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError(N_("must not contain NUL characters"))
    return value


class Schema(BaseModel):
    """Base of every request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


def _text(max_length: int, min_length: int = 1) -> object:
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


def _one_line(value: str) -> str:
    # Names and titles go into CSV and pabulib files, headers and mail subjects, where a line
    # break or another control character would split or forge a line.
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise ValueError(N_("must be one line without control characters"))
    return value


NoNul = AfterValidator(_no_nul)
OneLine = AfterValidator(_one_line)
Name = Annotated[str, _text(100), NoNul, OneLine]
Title = Annotated[str, _text(200), NoNul, OneLine]
Summary = Annotated[str, _text(1000), NoNul]
Body = Annotated[str, _text(20_000), NoNul]
Int32 = Annotated[int, Field(le=INT32_MAX, ge=-INT32_MAX - 1)]
PositiveInt32 = Annotated[int, Field(ge=1, le=INT32_MAX)]
Euros = Annotated[int, Field(ge=1, le=INT32_MAX, description="Whole euros.", examples=[4800])]


class Page(BaseModel, Generic[T]):
    """One page of a list: `?limit=` (default 50, max 200) and `?offset=`."""

    items: list[T]
    total: int
    limit: int
    offset: int
