"""The one settings object. No other module reads the environment.

Values come from `DASH_*` environment variables and a `.env` file in the working
directory (CONTRACT.md, "Configuration"). Everything tunable lives here so a
deployment can see every knob in one place.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import time
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration of one Improvement Dash deployment."""

    model_config = SettingsConfigDict(
        env_prefix="DASH_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # CONTRACT.md variables
    database_url: str = "sqlite:///./dash.db"
    public_url: str = "http://127.0.0.1:8000"
    secret_key: str | None = Field(
        default=None, description="Signs sessions and links; generated and stored on first run."
    )
    telegram_token: str | None = None
    telegram_webhook_secret: str | None = None
    telegram_api_base: str = "https://api.telegram.org/bot"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_sms_from: str | None = None
    twilio_whatsapp_from: str | None = None
    twilio_api_base: str = "https://api.twilio.com"

    # Our own knobs (documented in README "Configuration").
    default_region: str = Field(
        default="US", description="Region assumed for phone numbers written without +country."
    )
    telegram_per_second: float = 30.0
    telegram_per_chat_per_second: float = 1.0
    telegram_group_per_minute: float = 20.0
    twilio_sms_per_second: float = 1.0
    twilio_whatsapp_per_second: float = 10.0
    bulk_share: float = Field(default=0.8, description="Share of a rate limit bulk sends may use.")
    max_attempts: int = 8
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 600.0
    identical_outbound_cap: int = Field(
        default=3, description="Identical messages to one person per hour before the rest are held."
    )
    tick_seconds: float = 20.0
    delivery_poll_seconds: float = 0.5
    default_quiet_start: time = time(21, 0)
    default_quiet_end: time = time(7, 0)
    max_message_chars: int = 2000
    link_ttl_hours: int = 72
    login_max_failures: int = 5
    login_lockout_minutes: int = 15
    report_dir: str = "./reports"
    log_level: str = "INFO"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_token)

    @property
    def twilio_enabled(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @property
    def public_https(self) -> bool:
        return self.public_url.startswith("https://")

    def webhook_secret_for(self, secret_key: str) -> str:
        """The Telegram `secret_token`: configured, or derived so restarts agree."""
        if self.telegram_webhook_secret:
            return self.telegram_webhook_secret
        digest = hmac.new(secret_key.encode(), b"telegram-webhook", hashlib.sha256)
        return digest.hexdigest()[:48]

    def url(self, path: str) -> str:
        return self.public_url.rstrip("/") + "/" + path.lstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
