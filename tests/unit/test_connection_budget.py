"""The connection arithmetic `wijkbudget serve` checks at startup."""

from sqlalchemy import Engine, create_engine, text

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


def test_the_roles_own_connection_limit_counts_when_it_is_the_smaller() -> None:
    # The case: 60 wanted, the server has room, the role may open only 24.
    warning = connection_budget_warning(
        workers=6, per_worker=10, max_connections=100, reserved=3, role_limit=24, role="wb"
    )
    assert warning is not None
    assert "6 workers x 10 connections" in warning
    assert "60 may exceed the 19 connections wb may open" in warning
    assert "CONNECTION LIMIT 24" in warning
    # Within the role's limit less the headroom: no warning; one more: a warning.
    assert (
        connection_budget_warning(
            workers=1, per_worker=19, max_connections=100, reserved=3, role_limit=24
        )
        is None
    )
    assert connection_budget_warning(
        workers=1, per_worker=20, max_connections=100, reserved=3, role_limit=24
    )
    # No limit (-1), or one above the server's: the server's arithmetic alone.
    for role_limit in (-1, 500):
        assert (
            connection_budget_warning(
                workers=6, per_worker=10, max_connections=100, reserved=3, role_limit=role_limit
            )
            is None
        )
        server = connection_budget_warning(
            workers=10, per_worker=10, max_connections=100, reserved=3, role_limit=role_limit
        )
        assert server is not None
        assert "92 PostgreSQL connections available" in server
    # A limit below the headroom leaves the servers nothing.
    tiny = connection_budget_warning(
        workers=1, per_worker=1, max_connections=100, reserved=3, role_limit=2
    )
    assert tiny is not None
    assert "exceed the 0 connections" in tiny


def test_the_roles_limit_is_read_from_postgres(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        assert server_connection_limits(engine) is None
        return
    role = "wijkbudget_test_limited_role"
    with engine.begin() as connection:
        connection.execute(text(f"DROP ROLE IF EXISTS {role}"))
        connection.execute(text(f"CREATE ROLE {role} NOLOGIN CONNECTION LIMIT 24"))
    # Connected as the test's (super)user, then acting as the limited role: current_user.
    limited = create_engine(engine.url, connect_args={"options": f"-c role={role}"})
    try:
        limits = server_connection_limits(limited)
        own = server_connection_limits(engine)
    finally:
        limited.dispose()
        with engine.begin() as connection:
            connection.execute(text(f"DROP ROLE {role}"))
    assert limits is not None
    assert (limits.role, limits.role_limit) == (role, 24)
    assert own is not None
    with engine.connect() as connection:
        superuser = connection.execute(
            text("SELECT rolsuper, rolconnlimit FROM pg_roles WHERE rolname = current_user")
        ).one()
    # A superuser's limit is not enforced, so it does not count.
    assert own.role_limit == (-1 if superuser[0] else superuser[1])
