"""Every state change lives in one action function here, called by the bots, the
scheduler, the web app and the tests alike (the Zulip `actions` pattern).

Actions take an open SQLAlchemy session and do not commit: the caller's
transaction makes the change and its outbound messages atomic.
"""
