"""The connection arithmetic `wijkbudget serve` checks at startup."""

from sqlalchemy import Engine, text

from app.core.config import Settings
from app.core.db import CONNECTION_HEADROOM, connection_budget_warning, server_connection_limits


def test_the_default_pool_fits_two_machines_of_four_workers_in_default_postgres() -> None:
    defaults = Settings(_env_file=None)
    per_worker = defaults.db_pool_size + defaults.db_max_overflow
    assert 2 * 4 * per_worker <= 100 - 3 - CONNECTION_HEADROOM
    assert (
        connection_budget_warning(workers=8, per_worker=per_worker, max_connections=100, reserved=3)
        is None
    )


def test_a_machine_that_could_take_every_connection_is_warned_about() -> None:
    warning = connection_budget_warning(workers=10, per_worker=10, max_connections=100, reserved=3)
    assert warning is not None
    assert "10 workers x 10 connections" in warning
    assert "100 may exceed the 92 PostgreSQL connections available" in warning
    # The boundary: exactly what is available is fine, one more is not.
    assert (
        connection_budget_warning(workers=4, per_worker=23, max_connections=100, reserved=3) is None
    )
    assert (
        connection_budget_warning(workers=1, per_worker=93, max_connections=100, reserved=2) is None
    )
    assert connection_budget_warning(workers=1, per_worker=94, max_connections=100, reserved=2)


def test_the_limits_are_read_from_postgres_and_absent_on_sqlite(engine: Engine) -> None:
    limits = server_connection_limits(engine)
    if engine.dialect.name != "postgresql":
        assert limits is None
        return
    with engine.connect() as connection:
        expected = int(connection.execute(text("SHOW max_connections")).scalar_one())
        reserved = int(connection.execute(text("SHOW superuser_reserved_connections")).scalar_one())
    assert limits is not None
    assert limits[0] == expected
    assert limits[1] >= reserved
