"""Reads: select-only helpers shared by the web app, the engine, the scheduler and the bots.

Nothing here changes state; writes live in dash.actions."""
