"""Settings, read from environment variables prefixed ``RELANCE_``.

Every setting has an embedded default so ``relance dev`` runs with nothing set.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from relance.core.tokens import Signer


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RELANCE_", extra="ignore")

    data_dir: Path = Field(Path(".relance"), description="Local state of the embedded stack")
    database_url: str = Field("", description="SQLAlchemy URL; default: SQLite file <data_dir>/relance.db")
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = "relance"
    scenarios_dir: Path = Path("examples/scenarios")
    templates_dir: Path = Path("examples/templates")
    channel: str = Field("console", description="default channel of both: console, file or null")
    email_channel: str = Field("", description="console, file, smtp, ses or null; default: channel")
    sms_channel: str = Field("", description="console, file, sns or null; default: channel")
    aws_region: str = "eu-west-1"
    aws_endpoint_url: str = Field("", description="an AWS-compatible endpoint (tests, LocalStack)")
    ses_configuration_set: str = ""
    sms_sender_id: str = ""
    outbox_file: Path = Field(Path(".relance/outbox.jsonl"), description="file channel target")
    email_from: str = "Relance <no-reply@relance.localhost>"
    smtp_host: str = "localhost"
    smtp_port: int = 1025
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    api_keys: str = Field(
        "", description="comma-separated keys required on /v1 (Authorization: Bearer …); empty: open"
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    temporal_ui_port: int = 8233
    delivery_timeout_seconds: float = Field(
        30.0, description="start-to-close timeout of one delivery attempt"
    )
    secret_key: str = Field(
        "",
        description="signs links in messages; default: a random key kept in <data_dir>/secret_key",
    )
    public_url: str = Field(
        "http://127.0.0.1:8000", description="where contacts reach the API (unsubscribe links)"
    )
    unsubscribe_link_days: float = Field(365, description="how long an unsubscribe link works")
    tracking: bool = Field(True, description="open pixel and click redirects in HTML email")
    default_time_zone: str = Field(
        "Europe/Paris", description="time zone of contacts without one (SMS hours, calendar days)"
    )
    ses_topic_arns: str = Field(
        "", description="comma-separated SNS topics /webhooks/ses accepts; empty: any, once signed"
    )
    sns_url_pattern: str = Field(
        r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/",
        description="where SNS signing certificates and subscription links may be fetched from",
    )
    pressure_max_per_day: int = Field(
        1, ge=0, description="marketing messages per contact per local calendar day; 0: no cap"
    )
    pressure_arbitration_seconds: float = Field(
        2.0, ge=0, description="how long messages due together wait for each other to be ranked"
    )
    import_event: str = Field("", description="event sent to each new imported contact (C-02); empty: none")
    broadcast_safety_delay_seconds: float = Field(
        900, ge=0, description="after 'send', time to cancel or reschedule a bulk send (15 minutes)"
    )
    broadcast_batch_size: int = Field(500, ge=1, description="recipients per batch activity")
    broadcast_rate_per_second: float = Field(50, gt=0, description="the provider's sending rate")
    broadcast_batches_per_run: int = Field(
        1000, ge=1, description="batches before a bulk send continues as new (keeps its history short)"
    )
    gift_card_validity_months: int = Field(12, ge=1, description="how long an e-gift card can be spent")
    gift_card_warning_days: int = Field(7, ge=0, description="expiry warning this many days before the end")
    referral_validation_days: int = Field(
        15, ge=0, description="withdrawal period: a return in it cancels the referral's reward"
    )
    referral_reward_amount: float = Field(10.0, gt=0, description="the sponsor's e-gift card, in EUR")
    referral_reward: Literal["gift_card", "promo_pool", "promo_generated"] = Field(
        "gift_card",
        description="the sponsor's reward: an e-gift card, a code from a pool, or a generated code",
    )
    referral_promo_pool: str = Field(
        "referral", pattern=r"^[A-Za-z0-9_.-]{1,80}$", description="promo_pool: the pool codes come from"
    )
    referral_promo_prefix: str = Field(
        "THANKS", pattern=r"^[A-Za-z0-9]{1,20}$", description="promo_generated: the generated codes' prefix"
    )
    referral_thank_you: Literal["immediately", "after_invitations", "24h"] = Field(
        "after_invitations", description="when the sponsor is thanked for a batch of invitations"
    )
    required_criteria: str = Field(
        "",
        description="segment criteria every campaign must state to be applied, e.g. 'club' (comma-separated)",
    )
    payload_keys: str = Field(
        "",
        description="encrypt Temporal payloads: 'id:base64key' pairs, comma-separated, the first encrypts "
        "(`relance keys new`); empty: payloads are stored as JSON",
    )
    codec_cors_origins: str = Field(
        "http://localhost:8233,http://127.0.0.1:8233",
        description="Temporal UI origins allowed to call /codec/decode (comma-separated)",
    )
    log_level: str = "info"
    log_format: str = Field("json", description="json or console")

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, key: str) -> str:
        # A short key is guessable: refused when the settings are read, not at the first link.
        if key and len(key) < 16:
            raise ValueError("use at least 16 characters, or leave it unset for a random key kept locally")
        return key

    def resolved_secret_key(self) -> str:
        """The configured key, else one generated once and kept with the local state."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written aside, then linked in place: an API and a worker starting together
            # agree on one key, and nobody reads a half-written file.
            draft = path.with_name(f"secret_key.{os.getpid()}.tmp")
            with os.fdopen(os.open(draft, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600), "w") as out:
                out.write(secrets.token_urlsafe(32))
            try:
                os.link(draft, path)
            except FileExistsError:
                pass
            finally:
                draft.unlink()
        return path.read_text().strip()

    def signer(self) -> Signer:
        return Signer(self.resolved_secret_key(), self.unsubscribe_link_days * 86400)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'relance.db').as_posix()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
