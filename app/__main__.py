"""`python -m app` runs the `wijkbudget` command."""

from app.cli import main

main()
