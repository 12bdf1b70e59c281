"""The `dash` command line: dash.app.cli.main is the root and names every command module."""
