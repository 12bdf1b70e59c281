"""What every running part needs: settings, the database and the secret key."""

from __future__ import annotations

from dataclasses import dataclass

from dash.db import Database, database_from, secret_key
from dash.settings import Settings, get_settings


@dataclass
class AppContext:
    """Passed to the web app, the bots and the scheduler instead of globals."""

    settings: Settings
    db: Database
    secret: str

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, db: Database | None = None
    ) -> AppContext:
        settings = settings or get_settings()
        db = db or database_from(settings)
        return cls(settings=settings, db=db, secret=secret_key(db, settings))

    @property
    def telegram_webhook_secret(self) -> str:
        return self.settings.webhook_secret_for(self.secret)
