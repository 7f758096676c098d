"""Wijkbudget: a participatory-budgeting backend for municipalities."""

__version__ = "0.1.0"
