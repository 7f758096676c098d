"""Settings: secrets, URLs and origins as operators write them."""

import os
from pathlib import Path

import pytest

from app.core.config import ConfigError, Settings


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", [None, "short", "changeme", "a" * 40, "ab" * 20])
def test_production_refuses_missing_or_weak_keys(key: str | None) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        settings(environment="production", secret_key=key).require_strong_secret()


def test_production_accepts_a_strong_key() -> None:
    strong = settings(environment="production", secret_key="Vt3q-9xPz_Lm2Rk8sWd4YhN6bC0fGj1uQe7")
    strong.require_strong_secret()
    assert strong.signing_key() == "Vt3q-9xPz_Lm2Rk8sWd4YhN6bC0fGj1uQe7"


def test_development_generates_one_key_beside_the_database(workdir: Path) -> None:
    dev = settings(database_url=f"sqlite:///{workdir}/data/w.db")
    (workdir / "data").mkdir()
    first = dev.signing_key()
    key_file = workdir / "data" / "wijkbudget.secret"
    assert key_file.read_text().strip() == first
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert len(first) >= 48
    # A restart (or a second worker) reads the same key.
    assert settings(database_url=f"sqlite:///{workdir}/data/w.db").signing_key() == first
    assert [p.name for p in (workdir / "data").iterdir()] == ["wijkbudget.secret"]


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@db:5432/wijkbudget")
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("ACCESS_TOKEN_EXPIRE_MINUTES", "15")
    loaded = settings()
    assert loaded.database_url == "postgresql+psycopg://postgres@db:5432/wijkbudget"
    assert loaded.cors_origins == ["https://a.example", "https://b.example"]
    assert loaded.access_token_expire_minutes == 15
    monkeypatch.setenv("CORS_ORIGINS", '["https://c.example"]')
    assert settings().cors_origins == ["https://c.example"]


def test_dotenv_file_is_read(workdir: Path) -> None:
    (workdir / ".env").write_text("ENVIRONMENT=production\nSECRET_KEY=from-dotenv\n")
    loaded = Settings()
    assert loaded.environment == "production"
    assert loaded.secret_key is not None
    assert loaded.secret_key.get_secret_value() == "from-dotenv"
    assert "SECRET_KEY" not in os.environ
