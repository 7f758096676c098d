"""SECRET_KEY strength: long is not enough, a key needs randomness an attacker cannot guess."""

import secrets

import pytest

from app.core.config import MIN_SECRET_BITS, ConfigError, Settings, estimated_entropy_bits
from tests.conftest import TEST_SECRET


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "key",
    [
        "changethischangethischangethis!!",
        "abcdefgh" * 4,
        "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "0123456789" * 4,
        "qwertyuiopasdfghjklzxcvbnm123456",
    ],
)
@pytest.mark.parametrize("environment", ["production", "test"])
def test_long_but_guessable_keys_are_refused(key: str, environment: str) -> None:
    with pytest.raises(ConfigError, match=r"guessable.*token_urlsafe\(48\)"):
        settings(environment=environment, secret_key=key).require_strong_secret()


def test_generated_keys_pass() -> None:
    for _ in range(200):
        key = secrets.token_urlsafe(48)
        assert estimated_entropy_bits(key) >= MIN_SECRET_BITS, key
        settings(environment="production", secret_key=key).require_strong_secret()
    settings(environment="test", secret_key=TEST_SECRET).require_strong_secret()
