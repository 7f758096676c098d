"""Settings, read from environment variables and an optional `.env` file.

`SECRET_KEY` has rules beyond its type: outside development it must be set and strong
(`require_strong_secret`); in production `SMTP_URL` must be set (`require_mail_transport`);
in development a missing key is generated once and kept in a file
beside the default database, so every worker and every restart accepts the same tokens.
"""

import json
import logging
import math
import os
import secrets
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./wijkbudget.db"
DEV_SECRET_FILE = "wijkbudget.secret"
MIN_SECRET_LENGTH = 32
# HS256 wants a key about as strong as its 256-bit output; 192 estimated bits leave room for
# the estimate's pessimism. The advised `secrets.token_urlsafe(48)` scores well over 300.
MIN_SECRET_BITS = 192
_KNOWN_WEAK_SECRETS = {"changethis", "changeme", "secret", "development", "insecure"}
_CLASS_SIZES = ((str.islower, 26), (str.isupper, 26), (str.isdigit, 10))
_OTHER_CLASS_SIZE = 33  # printable ASCII punctuation and space


class ConfigError(Exception):
    """The configuration cannot be used; the message says what to change."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: SecretStr | None = None
    access_token_expire_minutes: int = Field(default=60, ge=1, le=60 * 24 * 30)
    cors_origins: Annotated[list[str], NoDecode] = []
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # A request body must arrive within this many seconds of the first read, else 408: a
    # client trickling bytes keeps only its own socket, and not for long.
    body_timeout_seconds: float = Field(default=10, gt=0, le=600)
    # Addresses of the reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed
    # (uvicorn's list: "10.0.0.1,10.0.0.2", a network "10.0.0.0/8", or "*"). None: proxy
    # headers are ignored, so no client can choose the address it is throttled by.
    forwarded_allow_ips: str | None = None
    # Connections per worker process. Requests beyond it wait in the event loop, not in a
    # thread: a thread blocked on an empty pool could starve the requests holding connections.
    # Every worker of every machine may open pool + overflow connections; the default 5 + 5
    # lets 2 machines x 4 workers x 10 = 80 fit PostgreSQL's default max_connections of 100
    # (see the README's connection arithmetic; `serve` warns when one machine alone won't).
    db_pool_size: int = Field(default=5, ge=1, le=200)
    db_max_overflow: int = Field(default=5, ge=0, le=200)
    # A request's statement waits at most this long for a lock (PostgreSQL lock_timeout,
    # SQLite busy timeout) and a PostgreSQL statement runs at most DB_STATEMENT_TIMEOUT_SECONDS;
    # beyond either the request is 503 database_unavailable, so nothing waits for ever and a
    # SIGTERM drains within SHUTDOWN_TIMEOUT_SECONDS. Commands (migrate, seal, publish from
    # the command line) have no such limits.
    db_lock_timeout_seconds: float = Field(default=10, gt=0, le=600)
    db_statement_timeout_seconds: float = Field(default=30, gt=0, le=3600)
    shutdown_timeout_seconds: float = Field(default=30, gt=0, le=3600)
    country: str = "Netherlands"
    code_claim_max_failures: int = Field(default=5, ge=1)
    code_claim_window_minutes: int = Field(default=60, ge=1)
    # Abuse limits (events per window), counted in the database across workers. Sign-in:
    # failures per account from one address; per address for accounts not yet signed in
    # from it; per account from everywhere (distributed guessing), over its own window. An
    # address stays "known" for an account for some days after a successful sign-in.
    login_max_failures_per_account_address: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)
    login_window_minutes: int = Field(default=15, ge=1)
    login_max_failures_per_account: int = Field(default=100, ge=1)
    login_account_window_minutes: int = Field(default=60, ge=1)
    login_known_address_days: int = Field(default=30, ge=1)
    # Wrong current passwords per account, over the sign-in window.
    password_change_max_failures: int = Field(default=5, ge=1)
    register_max_per_address: int = Field(default=10, ge=1)
    register_window_minutes: int = Field(default=60, ge=1)
    claim_max_per_address: int = Field(default=30, ge=1)
    claim_window_minutes: int = Field(default=60, ge=1)
    # POST /analysis/tally: its own body limit (a pabulib file, far above MAX_BODY_BYTES), at
    # most this many votes (Equal Shares on 100,000 takes seconds of a worker), and per
    # client address this many analyses per window.
    analysis_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    analysis_max_votes: int = Field(default=100_000, ge=1)
    analysis_max_per_address: int = Field(default=10, ge=1)
    analysis_window_minutes: int = Field(default=60, ge=1)
    # The shape an analysis may have (`election_too_large` beyond), checked right after
    # parsing: the largest real files (Lodz 2022: 160 projects, 133 distinct costs, 325,964
    # approvals) fit with room; files built to make Equal Shares slow do not.
    analysis_max_projects: int = Field(default=500, ge=1)
    analysis_max_approvals: int = Field(default=500_000, ge=1)
    analysis_max_distinct_costs: int = Field(default=300, ge=1)
    # Analyses run in child processes, at most ANALYSIS_SLOTS at once per worker (beyond:
    # 503 `busy`), each stopped after ANALYSIS_CPU_SECONDS of CPU (`election_too_large`).
    analysis_slots: int = Field(default=1, ge=1, le=32)
    analysis_cpu_seconds: int = Field(default=30, ge=1, le=3600)
    # Proposal images (app/services/media.py): stored as files under MEDIA_DIR; each upload
    # at most IMAGE_MAX_BYTES (its request body that plus room for the multipart framing)
    # and IMAGE_MAX_PIXELS (checked from the header, before decoding). 25 MP takes the
    # largest photo a phone makes by default (24 MP, 5712x4284) and a 24 MP camera's
    # 6000x4000; a PNG or WebP, decoded whole, costs 4 to 16 bytes per pixel, so the cap is
    # also the memory bound (the contract allows at most 40 MP). Stored at most
    # IMAGE_MAX_SIDE pixels on the long side; at most IMAGE_JOBS cleanings at once per
    # worker (beyond: 503 busy); IMAGE_UPLOADS_PER_HOUR per account.
    media_dir: str = "media"
    # `directory` (MEDIA_DIR, one machine) or `s3`: a bucket of any S3-compatible service,
    # which several application machines share. S3_ENDPOINT_URL for a service other than
    # AWS; the access keys may also come from boto3's usual sources (environment, role).
    media_store: Literal["directory", "s3"] = "directory"
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    image_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    image_max_pixels: int = Field(default=25_000_000, ge=1, le=40_000_000)
    image_max_side: int = Field(default=2048, ge=16, le=8192)
    image_jobs: int = Field(default=2, ge=1, le=64)
    image_uploads_per_hour: int = Field(default=30, ge=1)
    log_level: str = "INFO"
    # `json` (one object per line, fields in app/core/logsetup.py) or `text`; unset: json in
    # production, where a collector reads the lines, text elsewhere.
    log_format: Literal["json", "text"] | None = None
    # A line per request (the request log); off only to measure what it costs.
    log_requests: bool = True
    # GET /metrics answers only a bearer of this token; unset: no /metrics (404) and no
    # per-request figures are kept.
    metrics_token: SecretStr | None = None
    # How long start-up (serve, migrate and the other commands) waits for a database that
    # does not answer yet, retrying, before it gives up with one line.
    db_wait_seconds: float = Field(default=30, ge=0, le=3600)
    # Mail (see app/services/mail.py). SMTP_URL: smtp://user:pass@host:587 (STARTTLS when the
    # server offers it), smtp+starttls:// (STARTTLS required) or smtps://host:465 (implicit
    # TLS). Without it outside production, mail is written as .eml files to MAIL_OUTBOX_DIR.
    smtp_url: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=20, gt=0, le=300)
    mail_from: str = "Wijkbudget <noreply@wijkbudget.localhost>"
    frontend_url: str = "http://localhost:3000"
    mail_outbox_dir: str = "outbox"
    # Seconds between the in-server sender's passes; 0: no sender in the server (then run
    # `wijkbudget send-mail --loop`, or from cron).
    mail_sender_interval_seconds: float = Field(default=5, ge=0, le=3600)
    # Attempts before a mail is kept as failed for good; waits between attempts double from
    # MAIL_RETRY_SECONDS up to MAIL_RETRY_MAX_SECONDS (defaults: about a day in all).
    mail_max_attempts: int = Field(default=12, ge=1, le=100)
    mail_retry_seconds: float = Field(default=30, ge=0)
    mail_retry_max_seconds: float = Field(default=3 * 3600, ge=0)
    # A vote confirmation (receipt and link, never the ballot) to verified accounts.
    mail_ballot_receipts: bool = True
    # Abuse limits of the mail actions (per hour).
    verify_email_max_per_account: int = Field(default=5, ge=1)
    # E-mail changes (each mails a link to the new address), per day: per account, and to
    # one address from all accounts together (no one can be mail-bombed through it).
    email_change_max_per_account: int = Field(default=5, ge=1)
    email_change_max_per_address: int = Field(default=3, ge=1)
    password_reset_max_per_email: int = Field(default=5, ge=1)
    password_reset_max_per_address: int = Field(default=20, ge=1)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        # Accept a JSON list or a plain comma-separated string, the way operators write it.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `METRICS_TOKEN=` (compose passes an unset variable so) means no metrics, not an
        # empty token.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, value: str) -> str:
        # Operators paste libpq-style URLs; SQLAlchemy needs the driver named.
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def effective_log_format(self) -> Literal["json", "text"]:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.environment == "production" else "text"

    @property
    def require_verified_voters(self) -> bool:
        """Whether a process may enter voting only with voter verification (voting codes or
        verified e-mail, or the admin's explicit `allow_unverified_voters`)."""
        return self.environment == "production"

    def secret_problem(self) -> str | None:
        """Why the configured key is unusable outside development, or None if it is fine."""
        if self.secret_key is None:
            return "SECRET_KEY is not set"
        key = self.secret_key.get_secret_value()
        if len(key) < MIN_SECRET_LENGTH:
            return f"SECRET_KEY is shorter than {MIN_SECRET_LENGTH} characters"
        if key.lower() in _KNOWN_WEAK_SECRETS or len(set(key)) < 8:
            return "SECRET_KEY is a well-known or low-entropy value"
        bits = estimated_entropy_bits(key)
        if bits < MIN_SECRET_BITS:
            return (
                f"SECRET_KEY looks guessable (about {bits:.0f} bits of randomness, at least "
                f"{MIN_SECRET_BITS} needed: no words, repeats or runs like abcd or 1234)"
            )
        return None

    def require_strong_secret(self) -> None:
        if self.environment == "development":
            return
        problem = self.secret_problem()
        if problem:
            raise ConfigError(
                f"{problem}. Outside development Wijkbudget needs a strong key; generate one "
                'with: python -c "import secrets; print(secrets.token_urlsafe(48))"'
            )

    def require_mail_transport(self) -> None:
        """In production mail must really leave: a missing SMTP_URL is refused at start."""
        if self.environment == "production" and self.smtp_url is None:
            raise ConfigError(
                "SMTP_URL is not set. In production Wijkbudget sends mail (verification, "
                "password reset, vote confirmations) over SMTP; set e.g. "
                "SMTP_URL=smtp://user:password@smtp.example.org:587 and MAIL_FROM."
            )

    def require_media_store(self) -> None:
        if self.media_store == "s3" and not self.s3_bucket:
            raise ConfigError("MEDIA_STORE=s3 needs S3_BUCKET (and S3_ENDPOINT_URL outside AWS).")

    def signing_key(self) -> str:
        """The key that signs tokens and voting-code hashes."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        if self.environment != "development":
            raise ConfigError("SECRET_KEY is not set")
        return _development_secret(self.dev_secret_path())

    def dev_secret_path(self) -> Path:
        """Beside the SQLite file when there is one, else in the working directory."""
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix) and ":memory:" not in self.database_url:
            return Path(self.database_url[len(prefix) :]).resolve().parent / DEV_SECRET_FILE
        return Path.cwd() / DEV_SECRET_FILE


def estimated_entropy_bits(key: str) -> float:
    """A deliberately pessimistic estimate of the randomness in `key`, in bits.

    Each character is worth log2 of the alphabet its classes span (lower, upper, digits,
    other), unless an attacker's guesser would predict it: the same as or next to the
    character before (`aaaa`, `abcd`, `4321`), or ending a three-character piece seen
    earlier in the key (`changethischangethis`, `abcdefghabcdefgh`). A key of words and
    runs scores far below a random string of the same length."""
    alphabet = sum(size for test, size in _CLASS_SIZES if any(test(c) for c in key))
    if any(not (c.islower() or c.isupper() or c.isdigit()) for c in key):
        alphabet += _OTHER_CLASS_SIZE
    per_char = math.log2(max(alphabet, 2))
    surprising = 0
    seen: set[str] = set()
    for i, char in enumerate(key):
        triple = key[i - 2 : i + 1] if i >= 2 else ""
        predictable = (i > 0 and abs(ord(char) - ord(key[i - 1])) <= 1) or triple in seen
        if triple:
            seen.add(triple)
        if not predictable:
            surprising += 1
    return surprising * per_char


def _development_secret(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    # Write a private temporary file, then link it into place: when two workers start
    # together exactly one link succeeds, and both then read the same complete key.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".wijkbudget-secret-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        os.link(tmp, path)
    except FileExistsError:
        return path.read_text().strip()
    finally:
        os.unlink(tmp)
    logging.getLogger("wijkbudget").warning(
        "No SECRET_KEY set: generated a development key in %s. Set SECRET_KEY in production.",
        path,
    )
    return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
