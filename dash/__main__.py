"""`python -m dash` is the same as the `dash` command."""

from dash.cli import main

main()
