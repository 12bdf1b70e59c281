"""Errors a user can fix; the CLI prints them as one line and exits 1."""


class UserError(Exception):
    """Something the person asked for cannot be done as asked; the message says why."""
