"""Client text in log lines, made harmless.

A path, a header or any other text a client chose must never add a line to the log (a `%0A`
in a path decodes to a newline and would forge an entry) nor smuggle terminal escapes, so it
is logged escaped: non-printable and non-ASCII characters as Python escapes (`\\n`, `\\x1b`,
`\\u202e`), a backslash doubled so an escape in the text cannot pass for one of ours, and
cut to a bounded length.
"""

import re

MAX_LOGGED_CHARS = 512
# A receipt is the voter's own secret (it tells whether their ballot counted): a path that
# carries one is logged without it.
_RECEIPT_IN_PATH = re.compile(r"(/receipts/)[^/]+")


def log_path(path: str) -> str:
    """A request path for the log: receipts masked, then escaped like any client text."""
    return log_safe(_RECEIPT_IN_PATH.sub(r"\1***", path))


def log_safe(text: str, limit: int = MAX_LOGGED_CHARS) -> str:
    cut = text[:limit]
    escaped = cut.encode("unicode_escape").decode("ascii")
    return escaped + "..." if len(text) > limit else escaped
