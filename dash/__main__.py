"""`python -m dash` is the same as the `dash` command."""

from dash.app.cli.main import main

main()
