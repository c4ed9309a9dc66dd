"""The PostgreSQL journal's schema, its version, and the check made when a journal is opened.

Theory of operation
-------------------
Every table lives in one PostgreSQL schema of its own (`interruptible` unless the caller names
another), so a journal shares a database with an application without touching its tables, and
two journals can share a database under two names. `meta` holds the layout's version, 2 for
PostgreSQL (SQLite's versions are counted apart: the layouts differ). A newer version is refused
before anything is read or written; an older one is brought forward by `MIGRATIONS`, in the
same transaction as the check (PGJ-1).

`prepare` runs in one transaction holding a transaction-scoped advisory lock named after the
schema, so two processes opening a new database at once wait for each other: the first creates
the schema, the second finds it made (`CREATE SCHEMA IF NOT EXISTS` alone is not enough: two
concurrent creations can still collide in the catalog). DDL is transactional in PostgreSQL, so
a creation that fails leaves nothing behind.

The fences are the schema's, checked row by row by the `events_fenced` trigger in the
transaction of whatever INSERT writes the row, so a writer that bypasses this package meets
them too (PGJ-3):

- the epoch fence (OWN-3): the row's epoch must be its conversation's current epoch, read from
  the conversation's row in `conversations`, which the trigger locks FOR SHARE. A claim locks
  that row FOR UPDATE and moves its epoch (the `owners_follow_last` trigger), so a claim waits
  for the appends in flight on its conversation and an append waits for a claim in flight; an
  append that waited reads the epoch the claim committed (READ COMMITTED re-reads a row it
  locks), and under REPEATABLE READ or SERIALIZABLE it fails to serialize instead. No row of an
  older epoch can commit after a claim commits.
- the sequence fence (JRN-3): the row's sequence - 1 must be the conversation's largest
  sequence (one backward seek in the primary key; a row trigger sees the rows its statement
  wrote before it), and the primary key refuses a second row of a sequence. A concurrent
  writer of the same sequence waits on the key and fails when the first commits.

Append-only is enforced here too (JRN-11): triggers refuse UPDATE, DELETE and TRUNCATE of
`events`, `owners` and `quarantine`, except the one delete of JRN-9 (an `events` row already
copied into `quarantine`); a conversation's epoch moves only by a claim, one at a time.

`body` (jsonb) is derived from `body_text` by the trigger, so the two never disagree; see
`_postgres.py` for why reading decodes the text and not the jsonb.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Final

from .._errors import JournalError

if TYPE_CHECKING:
    import psycopg

SCHEMA_VERSION: Final = 2

DEFAULT_SCHEMA: Final = "interruptible"

# Every table of version 1; a namespace missing one of them is not a journal.
TABLES: Final = frozenset(
    {
        "meta",
        "conversations",
        "events",
        "quarantine",
        "leases",
        "owners",
        "commands",
        "command_counter",
        "command_answers",
    }
)

# Version 1, one statement per item; `{s}` is the quoted schema name. Trigger functions name
# every table with its schema: a foreign writer's search_path must not change what they check.
# Text keys use the "C" collation: byte order, which is the code point order Python sorts by
# (`conversations()` is sorted), and the cheapest comparison.
_V1: Final = (
    """
CREATE TABLE {s}.meta (
    key text PRIMARY KEY,
    value text NOT NULL
)
""",
    # One row per conversation written or claimed: its current owner epoch (NULL: never
    # owned). Appends lock it FOR SHARE, claims FOR UPDATE (see the module docstring).
    """
CREATE TABLE {s}.conversations (
    conversation_id text COLLATE "C" PRIMARY KEY,
    epoch bigint CHECK (epoch >= 1)
)
""",
    """
CREATE TABLE {s}.events (
    conversation_id text COLLATE "C" NOT NULL,
    sequence bigint NOT NULL CHECK (sequence >= 1),
    type text NOT NULL,
    body jsonb,
    body_text text NOT NULL,
    crc bigint NOT NULL,
    epoch bigint,
    PRIMARY KEY (conversation_id, sequence)
)
""",
    """
CREATE TABLE {s}.quarantine (
    quarantine_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id text COLLATE "C" NOT NULL,
    sequence bigint NOT NULL,
    type text,
    body_text text,
    crc bigint,
    epoch bigint,
    reason text NOT NULL,
    quarantined_at double precision NOT NULL
)
""",
    """
CREATE INDEX quarantine_by_record ON {s}.quarantine (conversation_id, sequence)
""",
    """
CREATE TABLE {s}.leases (
    owner_id text COLLATE "C" PRIMARY KEY,
    host text NOT NULL,
    pid bigint NOT NULL,
    expires double precision NOT NULL
)
""",
    """
CREATE TABLE {s}.owners (
    conversation_id text COLLATE "C" NOT NULL,
    epoch bigint NOT NULL CHECK (epoch >= 1),
    owner_id text COLLATE "C" NOT NULL,
    previous_owner text,
    reason text NOT NULL,
    taken_at double precision NOT NULL,
    PRIMARY KEY (conversation_id, epoch)
)
""",
    """
CREATE TABLE {s}.commands (
    command_id bigint PRIMARY KEY,
    conversation_id text COLLATE "C" NOT NULL,
    type text NOT NULL,
    body text NOT NULL,
    submitted_at double precision NOT NULL
)
""",
    # The last command id given out: one row, bumped in the submitting transaction, so commands
    # commit in id order with no gap (an owner's scan can trust "every id up to the last one is
    # visible"), and a reader of `last` sees only committed submissions (the change token).
    """
CREATE TABLE {s}.command_counter (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    last bigint NOT NULL
)
""",
    """
INSERT INTO {s}.command_counter (last) VALUES (0)
""",
    """
CREATE TABLE {s}.command_answers (
    command_id bigint PRIMARY KEY,
    epoch bigint,
    body text NOT NULL,
    answered_at double precision NOT NULL
)
""",
    # JRN-3 and OWN-3, and the jsonb document (see the module docstring). The epoch is checked
    # before the sequence: a stale owner whose sequence happens to fit is refused as stale.
    r"""
CREATE FUNCTION {s}.events_fenced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    current_epoch bigint;
    last_sequence bigint;
BEGIN
    SELECT c.epoch INTO current_epoch FROM {s}.conversations AS c
    WHERE c.conversation_id = NEW.conversation_id FOR SHARE;
    IF NOT FOUND THEN
        INSERT INTO {s}.conversations (conversation_id) VALUES (NEW.conversation_id)
        ON CONFLICT DO NOTHING;
        SELECT c.epoch INTO current_epoch FROM {s}.conversations AS c
        WHERE c.conversation_id = NEW.conversation_id FOR SHARE;
    END IF;
    IF NEW.epoch IS DISTINCT FROM current_epoch THEN
        RAISE EXCEPTION 'interruptible journal: a stale owner''s write (epoch %, current %)',
            NEW.epoch, current_epoch USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    SELECT max(e.sequence) INTO last_sequence FROM {s}.events AS e
    WHERE e.conversation_id = NEW.conversation_id;
    IF NEW.sequence - 1 IS DISTINCT FROM coalesce(last_sequence, 0) THEN
        RAISE EXCEPTION 'interruptible journal: a record must follow its conversation''s last'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    -- jsonb refuses a NUL character and an unpaired surrogate, which JSON text may escape:
    -- such an event keeps its text and gets no document. Only a body that escapes one of them
    -- pays for the exception block (a subtransaction).
    IF NEW.body_text ~ '\\u(0000|[dD][89a-fA-F])' THEN
        BEGIN
            NEW.body := NEW.body_text::jsonb;
        EXCEPTION WHEN invalid_text_representation OR untranslatable_character THEN
            NEW.body := NULL;
        END;
    ELSE
        NEW.body := NEW.body_text::jsonb;
    END IF;
    RETURN NEW;
END
$$
""",
    """
CREATE TRIGGER events_fenced BEFORE INSERT ON {s}.events
FOR EACH ROW EXECUTE FUNCTION {s}.events_fenced()
""",
    """
CREATE FUNCTION {s}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'interruptible journal: % is append-only', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$
""",
    # The one permitted delete (JRN-9): a row already copied, text and crc, into quarantine.
    """
CREATE FUNCTION {s}.events_delete_only_quarantined() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM {s}.quarantine AS q
        WHERE q.conversation_id = OLD.conversation_id AND q.sequence = OLD.sequence
          AND q.body_text IS NOT DISTINCT FROM OLD.body_text AND q.crc IS NOT DISTINCT FROM OLD.crc
    ) THEN
        RAISE EXCEPTION 'interruptible journal: only quarantined records may leave events'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN OLD;
END
$$
""",
    """
CREATE TRIGGER events_delete_only_quarantined BEFORE DELETE ON {s}.events
FOR EACH ROW EXECUTE FUNCTION {s}.events_delete_only_quarantined()
""",
    # A claim (OWN-2): the next epoch of the conversation, under its row's lock. The lock also
    # waits for every append in flight on the conversation (the fence's other half).
    """
CREATE FUNCTION {s}.owners_follow_last() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    current_epoch bigint;
BEGIN
    INSERT INTO {s}.conversations (conversation_id) VALUES (NEW.conversation_id)
    ON CONFLICT DO NOTHING;
    SELECT c.epoch INTO current_epoch FROM {s}.conversations AS c
    WHERE c.conversation_id = NEW.conversation_id FOR UPDATE;
    IF NEW.epoch - 1 IS DISTINCT FROM coalesce(current_epoch, 0) THEN
        RAISE EXCEPTION 'interruptible journal: an owner must follow the last epoch'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    UPDATE {s}.conversations SET epoch = NEW.epoch
    WHERE conversation_id = NEW.conversation_id;
    RETURN NEW;
END
$$
""",
    """
CREATE TRIGGER owners_follow_last BEFORE INSERT ON {s}.owners
FOR EACH ROW EXECUTE FUNCTION {s}.owners_follow_last()
""",
    # A conversation's epoch moves only from a claim (the trigger above), one step at a time.
    """
CREATE FUNCTION {s}.conversations_epoch_by_claim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() < 2 OR NEW.conversation_id IS DISTINCT FROM OLD.conversation_id
       OR NEW.epoch IS DISTINCT FROM coalesce(OLD.epoch, 0) + 1 THEN
        RAISE EXCEPTION 'interruptible journal: a conversation''s epoch moves only by a claim'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$
""",
    """
CREATE TRIGGER conversations_epoch_by_claim BEFORE UPDATE ON {s}.conversations
FOR EACH ROW EXECUTE FUNCTION {s}.conversations_epoch_by_claim()
""",
    *(
        f"""
CREATE TRIGGER {table}_append_only_{verb} BEFORE {verb.upper()} ON {{s}}.{table}
{"FOR EACH ROW" if verb != "truncate" else "FOR EACH STATEMENT"}
EXECUTE FUNCTION {{s}}.refuse_change()
"""
        for table, verbs in (
            ("events", ("update", "truncate")),
            ("owners", ("update", "delete", "truncate")),
            ("quarantine", ("update", "delete", "truncate")),
            ("conversations", ("delete", "truncate")),
        )
        for verb in verbs
    ),
)

# Version 2: work shared by workers (spec/workers.md). `{channel}` is the journal's NOTIFY
# channel (`channel(schema)`), a string literal in the trigger functions.
_V2: Final = (
    # Whether the conversation's active run still has to be driven (running, not interrupted,
    # not ended), as its owner last journaled it: set in the transaction of the events that
    # changed it, under the same epoch fence (WRK-2). A migrated journal marks every
    # conversation with events active: the first worker to claim one folds it and clears it.
    """
ALTER TABLE {s}.conversations ADD COLUMN active boolean NOT NULL DEFAULT false
""",
    """
CREATE INDEX conversations_active ON {s}.conversations (conversation_id) WHERE active
""",
    # The epoch still moves only by a claim; `active` is the owner's to set.
    """
CREATE OR REPLACE FUNCTION {s}.conversations_epoch_by_claim() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.conversation_id IS DISTINCT FROM OLD.conversation_id
       OR (NEW.epoch IS DISTINCT FROM OLD.epoch AND (pg_trigger_depth() < 2
           OR NEW.epoch IS DISTINCT FROM coalesce(OLD.epoch, 0) + 1)) THEN
        RAISE EXCEPTION 'interruptible journal: a conversation''s epoch moves only by a claim'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$
""",
    """
UPDATE {s}.conversations AS c SET active = true
WHERE EXISTS (SELECT 1 FROM {s}.events AS e WHERE e.conversation_id = c.conversation_id)
""",
    # A command is answered once (the answers' primary key); the flag keeps "pending" one
    # index probe, and is set by the answer's own insert.
    """
ALTER TABLE {s}.commands ADD COLUMN answered boolean NOT NULL DEFAULT false
""",
    """
UPDATE {s}.commands AS c SET answered = true
WHERE EXISTS (SELECT 1 FROM {s}.command_answers AS a WHERE a.command_id = c.command_id)
""",
    """
CREATE INDEX commands_pending ON {s}.commands (command_id) WHERE NOT answered
""",
    """
CREATE INDEX commands_pending_of ON {s}.commands (conversation_id, command_id)
WHERE NOT answered
""",
    # Notifications (WRK-4), sent when their transaction commits: 'c <id>' a command was
    # submitted, 'a <id>' a command was answered, 'w' a lease was released (its conversations
    # are free now). A command also makes its conversation's row, so a claim can lock it.
    """
CREATE FUNCTION {s}.command_submitted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {s}.conversations (conversation_id) VALUES (NEW.conversation_id)
    ON CONFLICT DO NOTHING;
    PERFORM pg_notify('{channel}', 'c ' || NEW.command_id);
    RETURN NULL;
END
$$
""",
    """
CREATE TRIGGER command_submitted AFTER INSERT ON {s}.commands
FOR EACH ROW EXECUTE FUNCTION {s}.command_submitted()
""",
    """
CREATE FUNCTION {s}.command_answered() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE {s}.commands SET answered = true WHERE command_id = NEW.command_id;
    PERFORM pg_notify('{channel}', 'a ' || NEW.command_id);
    RETURN NULL;
END
$$
""",
    """
CREATE TRIGGER command_answered AFTER INSERT ON {s}.command_answers
FOR EACH ROW EXECUTE FUNCTION {s}.command_answered()
""",
    """
CREATE FUNCTION {s}.lease_released() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{channel}', 'w');
    RETURN NULL;
END
$$
""",
    """
CREATE TRIGGER lease_released AFTER UPDATE ON {s}.leases
FOR EACH ROW WHEN (NEW.expires <= 0 AND OLD.expires > 0)
EXECUTE FUNCTION {s}.lease_released()
""",
    # 's <md5 of the conversation id>': a run of the conversation settled (its marker cleared
    # in the transaction of the events that interrupted or ended it): followers wake (WRK-4).
    # The id is hashed: a notification's payload is short, a conversation id need not be.
    """
CREATE FUNCTION {s}.conversation_settled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{channel}', 's ' || md5(NEW.conversation_id));
    RETURN NULL;
END
$$
""",
    """
CREATE TRIGGER conversation_settled AFTER UPDATE OF active ON {s}.conversations
FOR EACH ROW WHEN (OLD.active AND NOT NEW.active)
EXECUTE FUNCTION {s}.conversation_settled()
""",
    # A worker's claim (WRK-1), one transaction: the room left under its limit of live
    # conversations (those it owns marked active or with a pending command, counted here, so
    # the limit holds whatever else claims meanwhile), then up
    # to that many conversations with work (marked active, or with a pending command) whose
    # owner is gone, each locked SKIP LOCKED (two workers never wait on each other) and looked
    # at again under its lock: a claim committed since this statement's snapshot is seen, and
    # the conversation skipped. The owners row's trigger moves the epoch (OWN-2).
    """
CREATE FUNCTION {s}.claim_work(
    me text, max_live integer, max_claims integer, now_at double precision
) RETURNS TABLE (
    out_conversation text, out_epoch bigint, out_previous text, out_reason text,
    out_active boolean
) LANGUAGE plpgsql AS $$
DECLARE
    live integer;
    room integer;
    candidate text;
    current_epoch bigint;
    previous text;
    previous_expires double precision;
    is_active boolean;
    has_command boolean;
    why text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM {s}.leases AS l WHERE l.owner_id = me AND l.expires > now_at)
    THEN
        RETURN;
    END IF;
    SELECT count(*) INTO live FROM {s}.conversations AS c JOIN {s}.owners AS o
        ON o.conversation_id = c.conversation_id AND o.epoch = c.epoch
    WHERE o.owner_id = me AND (c.active OR EXISTS (
        SELECT 1 FROM {s}.commands AS k WHERE k.conversation_id = c.conversation_id
        AND NOT k.answered));
    room := least(max_live - live, max_claims);
    IF room <= 0 THEN
        RETURN;
    END IF;
    FOR candidate IN
        SELECT c.conversation_id FROM {s}.conversations AS c
        WHERE c.conversation_id IN (
            SELECT x.conversation_id FROM {s}.conversations AS x WHERE x.active
            UNION SELECT k.conversation_id FROM {s}.commands AS k WHERE NOT k.answered)
          AND NOT EXISTS (
            SELECT 1 FROM {s}.owners AS o JOIN {s}.leases AS l ON l.owner_id = o.owner_id
            WHERE o.conversation_id = c.conversation_id AND o.epoch = c.epoch
              AND l.expires > now_at)
        -- The oldest request first (a new run waits its turn, whatever its id); the
        -- conversations of a dead owner, which have no command, before any.
        ORDER BY (SELECT min(k.command_id) FROM {s}.commands AS k
                  WHERE k.conversation_id = c.conversation_id AND NOT k.answered) NULLS FIRST
        LIMIT room
        FOR UPDATE OF c SKIP LOCKED
    LOOP
        SELECT c.epoch, o.owner_id, l.expires, c.active INTO
            current_epoch, previous, previous_expires, is_active
        FROM {s}.conversations AS c
        LEFT JOIN {s}.owners AS o ON o.conversation_id = c.conversation_id AND o.epoch = c.epoch
        LEFT JOIN {s}.leases AS l ON l.owner_id = o.owner_id
        WHERE c.conversation_id = candidate;
        IF previous_expires > now_at THEN
            CONTINUE;  -- claimed (or renewed) since the candidates were read
        END IF;
        SELECT EXISTS (SELECT 1 FROM {s}.commands AS k
                       WHERE k.conversation_id = candidate AND NOT k.answered)
        INTO has_command;
        IF NOT (is_active OR has_command) THEN
            CONTINUE;  -- its work was done meanwhile
        END IF;
        IF previous IS NULL THEN
            why := CASE WHEN EXISTS (SELECT 1 FROM {s}.events AS e
                                     WHERE e.conversation_id = candidate)
                        THEN 'unowned' ELSE 'new' END;
        ELSIF coalesce(previous_expires, 0) <= 0 THEN
            why := 'released';
        ELSE
            why := 'lease_expired';
        END IF;
        INSERT INTO {s}.owners (conversation_id, epoch, owner_id, previous_owner, reason,
                                taken_at)
        VALUES (candidate, coalesce(current_epoch, 0) + 1, me, previous, why, now_at);
        out_conversation := candidate;
        out_epoch := coalesce(current_epoch, 0) + 1;
        out_previous := previous;
        out_reason := why;
        out_active := is_active;
        RETURN NEXT;
    END LOOP;
END
$$
""",
)

# Steps from each version to the next: MIGRATIONS[v] takes a schema at version v to v + 1 (0 is
# an empty namespace). A future layout appends its step and bumps SCHEMA_VERSION.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1, _V2)


def channel(schema: str) -> str:
    """The journal's NOTIFY channel: one per schema, within PostgreSQL's 63-byte names."""
    return "interruptible_" + hashlib.sha1(schema.encode(), usedforsecurity=False).hexdigest()[:16]


def quote(name: str) -> str:
    """`name` as a PostgreSQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def _not_a_journal(schema: str, why: str) -> JournalError:
    return JournalError(
        f"PostgreSQL schema {schema!r} is not an interruptible journal ({why}); pass "
        "schema= a new name, or one that interruptible created.",
        reason="not_a_journal",
    )


def prepare(conn: psycopg.Connection[Any], schema: str) -> None:
    """Create the schema in a new namespace, or check (and migrate) an existing one (PGJ-1)."""
    s = quote(schema)
    with conn.transaction():
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"interruptible journal schema {schema}",),
        )
        tables = {
            name
            for (name,) in conn.execute(
                "SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n "
                "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
                (schema,),
            ).fetchall()
        }
        version = _check_version(conn, schema, s, tables) if tables else 0
        if version < SCHEMA_VERSION:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
            _migrate(conn, s, version, channel(schema))


def check_readable(conn: psycopg.Connection[Any], schema: str) -> None:
    """Check, reading only, that the schema holds a journal of this version (a reading command
    opens it so: it creates and migrates nothing)."""
    s = quote(schema)
    tables = {
        name
        for (name,) in conn.execute(
            "SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
            (schema,),
        ).fetchall()
    }
    if not tables:
        raise JournalError(
            f"there is no journal in PostgreSQL schema {schema!r}; check --schema and the DSN's "
            "database (a worker creates it).",
            reason="no_journal",
        )
    version = _check_version(conn, schema, s, tables)
    if version < SCHEMA_VERSION:
        raise JournalError(
            f"PostgreSQL schema {schema!r} holds a journal of version {version}; open it once "
            f"to write (`interruptible worker`) to bring it to version {SCHEMA_VERSION}.",
            reason="schema_too_old",
        )


def _migrate(conn: psycopg.Connection[Any], s: str, version: int, notify: str) -> None:
    for step in MIGRATIONS[version:]:
        for statement in step:
            conn.execute(statement.replace("{s}", s).replace("{channel}", notify).encode())
    if version == 0:
        conn.execute(
            f"INSERT INTO {s}.meta (key, value) VALUES ('schema_version', %s)",
            (str(SCHEMA_VERSION),),
        )
    else:
        conn.execute(
            f"UPDATE {s}.meta SET value = %s WHERE key = 'schema_version'",
            (str(SCHEMA_VERSION),),
        )


def _check_version(conn: psycopg.Connection[Any], schema: str, s: str, tables: set[str]) -> int:
    if "meta" not in tables:
        raise _not_a_journal(schema, f"it has tables {sorted(tables)} but no 'meta'")
    row = conn.execute(f"SELECT value FROM {s}.meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        raise _not_a_journal(schema, "its meta table has no schema_version")
    try:
        version = int(str(row[0]))
    except ValueError:
        raise _not_a_journal(schema, f"its schema_version is {row[0]!r}") from None
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"PostgreSQL schema {schema!r} has journal schema version {version}, but this "
            f"interruptible reads versions up to {SCHEMA_VERSION}; upgrade interruptible to open "
            "it. Nothing was changed.",
            reason="schema_too_new",
        )
    if version < 1:
        raise _not_a_journal(schema, f"its schema_version is {version}")
    missing = TABLES - tables
    if missing:
        raise _not_a_journal(schema, f"tables {sorted(missing)} are missing")
    return version
