"""Field messages (`msg` of a `validation_error`) in the client's language.

pydantic writes its messages in English only. Each error type the API can produce has its
English template here, as pydantic words it, marked for the catalog; the Dutch one is filled
from the error's `ctx`. Our own validators' sentences (a `ValueError` or `FieldError` with a
`Message`, or a plain sentence that is in the catalog) are translated as they are. A type
not listed here keeps pydantic's English.
"""

import re
from collections.abc import Mapping
from typing import Any

from app.core.i18n import DEFAULT_LANGUAGE, N_, Language, Message, has_translation, translate

TYPE_TEMPLATES: dict[str, str] = {
    "missing": N_("Field required"),
    "missing_argument": N_("Missing required argument"),
    "extra_forbidden": N_("Extra inputs are not permitted"),
    "string_too_short": N_("String should have at least {min_length} characters"),
    "string_too_long": N_("String should have at most {max_length} characters"),
    "string_pattern_mismatch": N_("String should match pattern '{pattern}'"),
    "string_type": N_("Input should be a valid string"),
    "string_unicode": N_(
        "Input should be a valid string, unable to parse raw data as a unicode string"
    ),
    "greater_than_equal": N_("Input should be greater than or equal to {ge}"),
    "greater_than": N_("Input should be greater than {gt}"),
    "less_than_equal": N_("Input should be less than or equal to {le}"),
    "less_than": N_("Input should be less than {lt}"),
    "multiple_of": N_("Input should be a multiple of {multiple_of}"),
    "int_parsing": N_("Input should be a valid integer, unable to parse string as an integer"),
    "int_from_float": N_("Input should be a valid integer, got a number with a fractional part"),
    "int_type": N_("Input should be a valid integer"),
    "float_parsing": N_("Input should be a valid number, unable to parse string as a number"),
    "float_type": N_("Input should be a valid number"),
    "finite_number": N_("Input should be a finite number"),
    "decimal_parsing": N_("Input should be a valid decimal"),
    "bool_parsing": N_("Input should be a valid boolean, unable to interpret input"),
    "bool_type": N_("Input should be a valid boolean"),
    "datetime_parsing": N_("Input should be a valid datetime, {error}"),
    "datetime_from_date_parsing": N_("Input should be a valid datetime or date, {error}"),
    "datetime_type": N_("Input should be a valid datetime"),
    "timezone_aware": N_("Input should have timezone info"),
    "date_parsing": N_("Input should be a valid date in the format YYYY-MM-DD, {error}"),
    "date_type": N_("Input should be a valid date"),
    "list_type": N_("Input should be a valid list"),
    "dict_type": N_("Input should be a valid dictionary"),
    "model_type": N_("Input should be a valid dictionary or instance of {class_name}"),
    "model_attributes_type": N_(
        "Input should be a valid dictionary or object to extract fields from"
    ),
    "too_short": N_(
        "{field_type} should have at least {min_length} items after validation, not {actual_length}"
    ),
    "too_long": N_(
        "{field_type} should have at most {max_length} items after validation, not {actual_length}"
    ),
    "enum": N_("Input should be {expected}"),
    "literal_error": N_("Input should be {expected}"),
    "union_tag_invalid": N_(
        "Input tag '{tag}' found using {discriminator} does not match any of the expected "
        "tags: {expected_tags}"
    ),
    "union_tag_not_found": N_("Unable to extract tag using discriminator {discriminator}"),
    "json_invalid": N_("Invalid JSON: {error}"),
    "json_type": N_("JSON input should be string, bytes or bytearray"),
    "url_parsing": N_("Input should be a valid URL, {error}"),
    "url_type": N_("URL input should be a string or URL"),
    "uuid_parsing": N_("Input should be a valid UUID, {error}"),
    "value_error": N_("Value error, {error}"),
}

# pydantic's `expected` lists choices as "'a', 'b' or 'c'".
_OR = re.compile(r"(?<=') or (?=')")


def field_text(
    msg: "str | Message", type_: str, ctx: Mapping[str, Any] | None, language: Language
) -> str:
    """`msg` in `language`: our own sentence translated, pydantic's rebuilt from its type's
    template and `ctx`; pydantic's English where neither applies."""
    if isinstance(msg, Message):
        return msg.text(language)
    if language == DEFAULT_LANGUAGE:
        return msg
    if has_translation(msg, language):
        return translate(msg, language)
    values = {key: str(value) for key, value in (ctx or {}).items()}
    if type_ == "value_error":
        error = (ctx or {}).get("error")
        reason = error.args[0] if isinstance(error, Exception) and error.args else error
        if isinstance(reason, Message):
            return reason.text(language)
        if isinstance(reason, str) and has_translation(reason, language):
            return translate(reason, language)
        return msg
    template = TYPE_TEMPLATES.get(type_)
    if template is None or not has_translation(template, language):
        return msg
    if "expected" in values and language == "nl":
        values["expected"] = _OR.sub(" of ", values["expected"])
    if "error" in values:
        # pydantic's reason is English: the Dutch templates leave it out.
        values["error"] = ""
    try:
        return translate(template, language).format(**values)
    except (KeyError, IndexError, ValueError):
        return msg
