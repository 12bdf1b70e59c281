"""The wiring: the only part of `dash` that imports `bots` and `scheduler`.

dash.app.server builds the ASGI app, dash.app.workers runs delivery under leader locks beside
the scheduler, dash.app.cli is the `dash` command line and dash.app.demo the simulated Dash.
The layer contracts in pyproject.toml ([tool.importlinter]) keep every other module of
`dash` from importing this package, `bots` or `scheduler`.
"""
