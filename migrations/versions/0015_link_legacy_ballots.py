"""ballots cast by the release before are linked to their voter too (rolling upgrades)

During an upgrade, servers of the release before (0.9.0) keep running on this schema. They
write a ballot with `voter_id` set and know nothing of `ballot_voter`; this release finds a
voter's ballot only through `ballot_voter`. Without more, a voter casting once on each kind
of server would have two ballots counted. A trigger closes that: a ballot inserted with a
voter (only the release before does that) becomes the voter's linked ballot, and the one
linked before it, if any, is deleted, as a replacing cast would. The release before keeps
seeing its own ballots by `voter_id`.

Contract, one release later (when no server of 0.9.0 is left): drop the trigger, clear and
drop `ballot.voter_id` with its unique constraint.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_POSTGRESQL = """
CREATE FUNCTION link_legacy_ballot() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM ballot_voter
     WHERE process_id = NEW.process_id AND voter_id = NEW.voter_id FOR UPDATE;
    DELETE FROM ballot
     WHERE id <> NEW.id
       AND id = (SELECT ballot_id FROM ballot_voter
                  WHERE process_id = NEW.process_id AND voter_id = NEW.voter_id);
    INSERT INTO ballot_voter (process_id, voter_id, ballot_id)
    VALUES (NEW.process_id, NEW.voter_id, NEW.id)
    ON CONFLICT (process_id, voter_id) DO UPDATE SET ballot_id = EXCLUDED.ballot_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER link_legacy_ballot AFTER INSERT ON ballot
FOR EACH ROW WHEN (NEW.voter_id IS NOT NULL) EXECUTE FUNCTION link_legacy_ballot();
"""

_SQLITE = """
CREATE TRIGGER link_legacy_ballot AFTER INSERT ON ballot WHEN NEW.voter_id IS NOT NULL
BEGIN
    DELETE FROM ballot
     WHERE id <> NEW.id
       AND id = (SELECT ballot_id FROM ballot_voter
                  WHERE process_id = NEW.process_id AND voter_id = NEW.voter_id);
    INSERT INTO ballot_voter (process_id, voter_id, ballot_id)
    VALUES (NEW.process_id, NEW.voter_id, NEW.id)
    ON CONFLICT (process_id, voter_id) DO UPDATE SET ballot_id = excluded.ballot_id;
END
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRESQL)
    else:
        op.execute(_SQLITE)


def downgrade() -> None:
    op.execute(
        "DROP TRIGGER IF EXISTS link_legacy_ballot"
        + (" ON ballot" if op.get_bind().dialect.name == "postgresql" else "")
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS link_legacy_ballot()")
