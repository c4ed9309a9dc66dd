"""The PostgreSQL journal's statements: every query `PostgresJournal` sends, in one place.

Each names its tables with the journal's schema (quoted), so the connection's `search_path`
never matters. Writes are plain INSERTs: the fences are the schema's triggers (`_pg_schema.py`).
Several rows go in as one INSERT ... SELECT FROM unnest(arrays), one statement whatever their
number, which psycopg prepares once.
"""

from __future__ import annotations

from ._pg_schema import quote


def statements(schema: str) -> dict[str, bytes]:
    """Every statement of the journal, by name, with its schema's name in it (bytes: the text is
    built at run time, so it is not a literal string for psycopg's checks)."""
    s = quote(schema)
    owner_columns = (
        "o.conversation_id, o.epoch, o.owner_id, o.previous_owner, o.reason, o.taken_at, "
        "coalesce(l.host, ''), coalesce(l.pid, 0), coalesce(l.expires, 0.0)"
    )
    columns = "conversation_id, sequence, type, body_text, crc, epoch"
    texts = {
        "insert_one": f"INSERT INTO {s}.events ({columns}) VALUES (%s, %s, %s, %s, %s, %s)",
        "insert_many": (
            f"INSERT INTO {s}.events ({columns}) SELECT * FROM unnest(%s::text[], "
            "%s::bigint[], %s::text[], %s::text[], %s::bigint[], %s::bigint[])"
        ),
        "answer_many": (
            f"INSERT INTO {s}.command_answers (command_id, epoch, body, answered_at) "
            "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::float8[])"
        ),
        "heads": (
            "SELECT t.cid, "
            f"coalesce((SELECT max(e.sequence) FROM {s}.events AS e "
            "WHERE e.conversation_id = t.cid), 0), "
            f"(SELECT c.epoch FROM {s}.conversations AS c WHERE c.conversation_id = t.cid) "
            "FROM unnest(%s::text[]) AS t (cid)"
        ),
        "last": (f"SELECT coalesce(max(sequence), 0) FROM {s}.events WHERE conversation_id = %s"),
        "page": (
            f"SELECT sequence, type, body_text, crc FROM {s}.events "
            "WHERE conversation_id = %s AND sequence > %s ORDER BY sequence LIMIT %s"
        ),
        "tail": (
            f"SELECT sequence, type, body_text, crc FROM {s}.events "
            "WHERE conversation_id = %s ORDER BY sequence DESC LIMIT %s"
        ),
        "all": (
            f"SELECT sequence, type, body_text, crc FROM {s}.events "
            "WHERE conversation_id = %s ORDER BY sequence"
        ),
        "conversations": (
            f"SELECT c.conversation_id FROM {s}.conversations AS c WHERE EXISTS "
            f"(SELECT 1 FROM {s}.events AS e WHERE e.conversation_id = c.conversation_id) "
            "ORDER BY c.conversation_id"
        ),
        "lock_conversation": (
            f"SELECT 1 FROM {s}.conversations WHERE conversation_id = %s FOR UPDATE"
        ),
        "quarantine": (
            f"INSERT INTO {s}.quarantine (conversation_id, sequence, type, body_text, crc, "
            "epoch, reason, quarantined_at) "
            "SELECT conversation_id, sequence, type, body_text, crc, epoch, "
            "CASE WHEN sequence = %s THEN %s ELSE %s END, %s "
            f"FROM {s}.events WHERE conversation_id = %s AND sequence >= %s ORDER BY sequence"
        ),
        "unlog": f"DELETE FROM {s}.events WHERE conversation_id = %s AND sequence >= %s",
        "quarantined": (
            f"SELECT conversation_id, sequence, reason FROM {s}.quarantine ORDER BY quarantine_id"
        ),
        "register": (
            f"INSERT INTO {s}.leases (owner_id, host, pid, expires) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (owner_id) DO UPDATE SET expires = excluded.expires"
        ),
        "renew": f"UPDATE {s}.leases SET expires = %s WHERE owner_id = %s",
        "touch": (
            f"INSERT INTO {s}.conversations (conversation_id) VALUES (%s) ON CONFLICT DO NOTHING"
        ),
        "claim_check": (
            f"SELECT c.epoch, o.owner_id, EXISTS (SELECT 1 FROM {s}.leases AS l "
            "WHERE l.owner_id = %s) "
            f"FROM {s}.conversations AS c LEFT JOIN {s}.owners AS o "
            "ON o.conversation_id = c.conversation_id AND o.epoch = c.epoch "
            "WHERE c.conversation_id = %s FOR UPDATE OF c"
        ),
        "claim": (
            f"WITH o AS (INSERT INTO {s}.owners (conversation_id, epoch, owner_id, "
            "previous_owner, reason, taken_at) VALUES (%s, %s, %s, %s, %s, %s) RETURNING *) "
            f"SELECT {owner_columns} FROM o LEFT JOIN {s}.leases AS l USING (owner_id)"
        ),
        "owner": (
            f"SELECT {owner_columns} FROM {s}.conversations AS c JOIN {s}.owners AS o "
            "ON o.conversation_id = c.conversation_id AND o.epoch = c.epoch "
            f"LEFT JOIN {s}.leases AS l ON l.owner_id = o.owner_id "
            "WHERE c.conversation_id = %s"
        ),
        "owners": (
            f"SELECT {owner_columns} FROM {s}.conversations AS c JOIN {s}.owners AS o "
            "ON o.conversation_id = c.conversation_id AND o.epoch = c.epoch "
            f"LEFT JOIN {s}.leases AS l ON l.owner_id = o.owner_id "
            "ORDER BY c.conversation_id"
        ),
        "history": (
            f"SELECT {owner_columns} FROM {s}.owners AS o "
            f"LEFT JOIN {s}.leases AS l ON l.owner_id = o.owner_id "
            "WHERE o.conversation_id = %s ORDER BY o.epoch"
        ),
        "submit": (
            f"WITH next AS (UPDATE {s}.command_counter SET last = last + 1 RETURNING last) "
            f"INSERT INTO {s}.commands (command_id, conversation_id, type, body, "
            "submitted_at) SELECT last, %s, %s, %s, %s FROM next RETURNING command_id"
        ),
        "pending": (
            f"SELECT c.command_id, c.conversation_id, c.body, c.submitted_at "
            f"FROM {s}.commands AS c WHERE c.command_id > %s AND NOT c.answered "
            "ORDER BY c.command_id"
        ),
        "pending_of": (
            f"SELECT c.command_id, c.conversation_id, c.body, c.submitted_at "
            f"FROM {s}.commands AS c WHERE c.command_id > %s AND c.conversation_id = %s "
            "AND NOT c.answered ORDER BY c.command_id"
        ),
        "find_run": (
            f"SELECT conversation_id FROM {s}.events WHERE type = 'run_requested' "
            "AND body ->> 'run_id' = %s ORDER BY conversation_id LIMIT 1"
        ),
        "active": (
            f"SELECT conversation_id FROM {s}.conversations WHERE active ORDER BY conversation_id"
        ),
        "share_conversations": (
            f"SELECT 1 FROM {s}.conversations WHERE conversation_id = ANY(%s::text[]) "
            "ORDER BY conversation_id FOR SHARE"
        ),
        "answer_once": (
            f"INSERT INTO {s}.command_answers (command_id, epoch, body, answered_at) "
            "VALUES (%s, NULL, %s, %s) ON CONFLICT DO NOTHING"
        ),
        # Through the partial indexes of work (marked active, pending commands), as
        # `claim_work` looks: never a scan of every conversation or owner.
        "owned": (
            f"SELECT c.conversation_id, c.epoch, c.active FROM {s}.conversations AS c "
            f"JOIN {s}.owners AS o ON o.conversation_id = c.conversation_id "
            "AND o.epoch = c.epoch WHERE o.owner_id = %s AND c.conversation_id IN "
            f"(SELECT x.conversation_id FROM {s}.conversations AS x WHERE x.active "
            f"UNION SELECT k.conversation_id FROM {s}.commands AS k WHERE NOT k.answered) "
            "ORDER BY c.conversation_id"
        ),
        "claim_work": f"SELECT * FROM {s}.claim_work(%s, %s, %s, %s)",
        # The activity marker (WRK-2), under the epoch fence: a row whose epoch moved is left
        # alone, and the caller counts the rows it changed.
        "mark": (
            f"UPDATE {s}.conversations AS c SET active = t.active "
            "FROM unnest(%s::text[], %s::bigint[], %s::boolean[]) AS t (cid, epoch, active) "
            "WHERE c.conversation_id = t.cid AND c.epoch IS NOT DISTINCT FROM t.epoch"
        ),
        "owners_of": (
            f"SELECT {owner_columns} FROM {s}.conversations AS c JOIN {s}.owners AS o "
            "ON o.conversation_id = c.conversation_id AND o.epoch = c.epoch "
            f"LEFT JOIN {s}.leases AS l ON l.owner_id = o.owner_id "
            "WHERE c.conversation_id = ANY(%s::text[]) AND o.owner_id <> %s"
        ),
        "last_command": f"SELECT last FROM {s}.command_counter",
        "answer": (
            f"SELECT command_id, epoch, body, answered_at FROM {s}.command_answers "
            "WHERE command_id = %s"
        ),
    }
    return {name: text.encode() for name, text in texts.items()}
