"""The one settings object. No other module reads the environment.

Values come from `DASH_*` environment variables and a `.env` file in the working
directory (CONTRACT.md, "Configuration"). Everything tunable lives here so a
deployment can see every knob in one place.
"""

from __future__ import annotations

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
    smtp_url: str | None = Field(
        default=None,
        description="E-mail server: smtp://user:pass@host:port (STARTTLS when offered) or smtps://.",
    )
    mail_from: str | None = Field(default=None, description="The From address of our e-mails.")

    # Our own knobs (documented in README "Configuration").
    default_region: str = Field(
        default="US", description="Region assumed for phone numbers written without +country."
    )
    telegram_per_second: float = Field(
        default=30.0, description="Telegram messages per second per bot."
    )
    telegram_per_chat_per_second: float = Field(
        default=1.0, description="Telegram messages per second to one chat."
    )
    telegram_group_per_minute: float = Field(
        default=20.0, description="Telegram messages per minute to one group."
    )
    twilio_sms_per_second: float = Field(
        default=1.0, description="SMS segments per second per sender number."
    )
    twilio_whatsapp_per_second: float = Field(
        default=10.0, description="WhatsApp messages per second per sender."
    )
    smtp_per_second: float = Field(default=5.0, description="E-mails per second to the server.")
    bulk_share: float = Field(default=0.8, description="Share of a rate limit bulk sends may use.")
    max_attempts: int = Field(
        default=8, description="Delivery attempts before a message is marked failed."
    )
    backoff_base_seconds: float = Field(
        default=2.0, description="First retry delay; doubles each attempt."
    )
    rate_limited_retry_minutes: float = Field(
        default=15.0,
        description="How long a message keeps waiting out flood control (429) before it is marked failed.",
    )
    backoff_max_seconds: float = Field(default=600.0, description="Longest retry delay.")
    identical_outbound_cap: int = Field(
        default=3,
        description="Identical scheduled messages to one person per hour before the rest are held (replies never are).",
    )
    daily_message_budget: int = Field(
        default=4,
        ge=1,
        description="Scheduled messages one person gets in a day of their team's time zone; the "
        "rest are kept held in the thread for the coach (replies and coach messages never count).",
    )
    serve_roles: str = Field(
        default="web,tick,delivery",
        description="What `dash serve` runs when no --role is given: web, tick, delivery (comma-separated).",
    )
    serve_workers: int = Field(
        default=1,
        ge=1,
        description="Processes `dash serve` starts on its port (uvicorn workers), each running the roles; "
        "webhooks are stateless, so one per CPU multiplies inbound throughput.",
    )
    tick_seconds: float = Field(
        default=20.0, description="How often the scheduler looks for due steps."
    )
    delivery_poll_seconds: float = Field(
        default=0.5, description="How often the delivery worker looks for queued messages."
    )
    console_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often an idle `dash chat` window looks for messages sent to it by "
        "another process (`dash serve`, `dash dispatch`).",
    )
    delivery_lease_seconds: float = Field(
        default=60.0,
        description="How long a message being sent belongs to one worker; if that worker dies,"
        " another sends it again after this (keep it above the 45 s send timeout).",
    )
    default_quiet_start: time = Field(
        default=time(21, 0),
        description="Start of quiet hours when neither team nor curriculum sets them.",
    )
    default_quiet_end: time = Field(default=time(7, 0), description="End of default quiet hours.")
    max_message_chars: int = Field(default=2000, description="Longest inbound text accepted.")
    max_request_bytes: int = Field(
        default=262_144,
        description="Largest HTTP request body (webhooks, forms); a bigger one is answered 413.",
    )
    signoff_template_sid: str | None = Field(
        default=None,
        description="The approved WhatsApp template (Twilio ContentSid) a sign-off request goes "
        "as to a leader who has not written in the last 24 hours. Variables: 1 the leader's "
        "name, 2 the key contact's, 3 the unit, 4 the sign-off link. Without it such a request "
        "goes by SMS when SMS is enabled, else the key contact forwards the link.",
    )
    link_ttl_hours: int = Field(
        default=72, description="Lifetime of signed links (sign-off, matrix, log-in)."
    )
    login_max_failures: int = Field(
        default=5, description="Failed log-ins before an account is locked."
    )
    login_lockout_minutes: int = Field(
        default=15, description="How long a locked account stays locked."
    )
    login_address_max_failures: int = Field(
        default=10,
        description="Failed log-ins from one client address, over any accounts, before it "
        "must wait for the window to end.",
    )
    login_network_max_failures: int = Field(
        default=30,
        description="Failed log-ins from one network (/24 IPv4, /64 IPv6) before it must wait.",
    )
    login_throttle_minutes: int = Field(
        default=15, description="The window failed log-ins per address and network count in."
    )
    report_dir: str = Field(
        default="./reports", description="Where `dash report` writes by default."
    )
    log_level: str = Field(default="INFO", description="Logging level (JSON lines on stderr).")

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
    def enabled_channels(self) -> tuple[str, ...]:
        """The channels this deployment can send on, in the order a person is reached.

        The one rule (bots.channel.ChannelType.enabled reads it): a channel is enabled
        when its provider settings are there; the console needs none.
        """
        found = []
        if self.telegram_enabled:
            found.append("telegram")
        if self.twilio_enabled and self.twilio_whatsapp_from:
            found.append("whatsapp")
        if self.twilio_enabled and self.twilio_sms_from:
            found.append("sms")
        if self.smtp_url and self.mail_from:
            found.append("email")
        found.append("console")
        return tuple(found)

    @property
    def public_https(self) -> bool:
        return self.public_url.startswith("https://")

    def url(self, path: str) -> str:
        return self.public_url.rstrip("/") + "/" + path.lstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
