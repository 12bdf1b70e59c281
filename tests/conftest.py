"""Shared test set-up.

Every test runs with non-loopback sockets blocked (pytest-socket, configured in
pyproject.toml), so no test can reach the internet by accident.
"""
