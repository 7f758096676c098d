"""Wijkbudget: a participatory-budgeting backend for municipalities.

`__version__` is the installed distribution's version, i.e. `version` in pyproject.toml
(the one place it is written; CHANGELOG.md names the commit each release was cut from).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("wijkbudget")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
