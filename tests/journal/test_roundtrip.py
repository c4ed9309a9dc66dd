"""Property tests: any events survive the SQLite and PostgreSQL journals unchanged, by either
decoding path."""

from __future__ import annotations

import dataclasses
import itertools
import json
import tempfile
import zlib
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interruptible import Event, RunRequested, dumps, loads_event, type_name
from interruptible._journal import AppendBatch, PostgresJournal, SQLiteJournal
from interruptible._journal._records import TornRecord, decode_page, decode_record
from interruptible._vocabulary import EVENT_TYPES
from interruptible.testing.strategies import events, json_values
from tests._postgres import POSTGRES

# Each example opens a SQLite file: fewer examples than the profile's default keep this quick.
FILE_SETTINGS = settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])


def by_conversation(drawn: list[Event]) -> dict[str, list[Event]]:
    """The drawn events grouped by their conversation, in drawn order."""
    grouped: dict[str, list[Event]] = defaultdict(list)
    for event in drawn:
        grouped[event.conversation_id].append(event)
    return grouped


# Events of three conversations: at least 10 of them, so one conversation has at least 4 and a
# second round (a group commit after a conversation's first chunk) always happens.
_THREE_CONVERSATIONS = st.lists(
    st.tuples(st.sampled_from(["c0", "c1", "c2"]), events()).map(
        lambda pair: dataclasses.replace(pair[1], conversation_id=pair[0])
    ),
    min_size=10,
    max_size=30,
)


@FILE_SETTINGS
@given(_THREE_CONVERSATIONS, st.integers(min_value=1, max_value=3))
def test_jrn_2_any_events_round_trip_through_sqlite(drawn: list[Event], chunk: int) -> None:
    """Events appended in chunks, every other round by group commit of several conversations,
    read back equal, in order, after reopen."""
    grouped = by_conversation(drawn)
    group_commits = 0
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "journal.db"
        with SQLiteJournal(path) as journal:
            longest = max((len(conversation) for conversation in grouped.values()), default=0)
            for round_, start in enumerate(range(0, longest, chunk)):
                batches = [
                    AppendBatch(cid, start, conversation[start : start + chunk])
                    for cid, conversation in grouped.items()
                    if start < len(conversation)
                ]
                if round_ % 2:  # every other round by group commit
                    assert journal.append_many(batches) == [
                        batch.expected_last + len(batch.events) for batch in batches
                    ]
                    group_commits += 1
                else:
                    for batch in batches:
                        journal.append(batch.conversation_id, batch.expected_last, batch.events)
        with SQLiteJournal(path) as journal:
            assert journal.recovered == []
            assert journal.conversations() == sorted(grouped)
            for cid, conversation in grouped.items():
                records = list(journal.read(cid))
                assert [r.event for r in records] == conversation
                assert [r.sequence for r in records] == list(range(1, len(conversation) + 1))
    assert group_commits >= 1


@pytest.fixture(scope="module")
def shared_postgres() -> Iterator[PostgresJournal]:
    """One PostgreSQL journal for every example of a test (a schema per example would cost
    more than the example); each example writes conversations of its own."""
    journal = POSTGRES.journal()
    yield journal
    journal.close()
    POSTGRES.drop_schema(journal.schema)


_EXAMPLES = itertools.count()


@FILE_SETTINGS
@given(_THREE_CONVERSATIONS, st.integers(min_value=1, max_value=3))
def test_jrn_2_pgj_2_any_events_round_trip_through_postgres(
    shared_postgres: PostgresJournal, drawn: list[Event], chunk: int
) -> None:
    """Events appended to PostgreSQL in chunks, every other round by group commit, read back
    equal and of the same field types through a second connection, whatever jsonb would have
    made of their payloads."""
    prefix = f"x{next(_EXAMPLES)}-"
    grouped = {
        prefix + cid: [dataclasses.replace(e, conversation_id=prefix + cid) for e in events]
        for cid, events in by_conversation(drawn).items()
    }
    journal = shared_postgres
    longest = max(len(conversation) for conversation in grouped.values())
    for round_, start in enumerate(range(0, longest, chunk)):
        batches = [
            AppendBatch(cid, start, conversation[start : start + chunk])
            for cid, conversation in grouped.items()
            if start < len(conversation)
        ]
        if round_ % 2:
            journal.append_many(batches)
        else:
            for batch in batches:
                journal.append(batch.conversation_id, batch.expected_last, batch.events)
    with POSTGRES.journal(journal.schema) as reader:
        for cid, conversation in grouped.items():
            records = list(reader.read(cid))
            assert [r.event for r in records] == conversation
            assert [field_types(r.event) for r in records] == [field_types(e) for e in conversation]
            assert [r.sequence for r in records] == list(range(1, len(conversation) + 1))


def field_types(event: Event) -> list[type]:
    """The Python type of each field (equality alone would let 1 stand for 1.0)."""
    return [type(getattr(event, f.name)) for f in dataclasses.fields(event)]


@given(st.lists(events(), min_size=1, max_size=10))
def test_jrn_2_the_fast_decoding_path_agrees_with_the_codec(drawn: list[Event]) -> None:
    """For any journaled events, a page decoded in bulk equals the codec's decoding, typewise."""
    moved = [dataclasses.replace(event, conversation_id="c") for event in drawn]
    rows = []
    for sequence, event in enumerate(moved, start=1):
        body = dumps(event)
        rows.append((sequence, type_name(event), body, zlib.crc32(body.encode())))
    decoded, torn = decode_page("c", 1, rows)
    assert torn is None
    expected = [loads_event(dumps(event)) for event in moved]
    assert decoded == expected == moved
    assert [field_types(e) for e in decoded] == [field_types(e) for e in expected]


@given(st.lists(events(), min_size=2, max_size=6), st.data())
def test_jrn_6_a_page_stops_at_its_first_torn_record(
    drawn: list[Event], data: st.DataObject
) -> None:
    """Whatever record of a page is damaged, the whole ones before it decode and it is named."""
    moved = [dataclasses.replace(event, conversation_id="c") for event in drawn]
    rows = []
    for sequence, event in enumerate(moved, start=1):
        body = dumps(event)
        rows.append((sequence, type_name(event), body, zlib.crc32(body.encode())))
    bad = data.draw(st.integers(min_value=0, max_value=len(rows) - 1))
    sequence, type_, body, _ = rows[bad]
    cut = body[: data.draw(st.integers(min_value=0, max_value=len(body) - 1))]
    rows[bad] = (sequence, type_, cut, zlib.crc32(cut.encode()))
    decoded, torn = decode_page("c", 1, rows)
    assert decoded == moved[:bad]
    assert torn is not None and torn.sequence == bad + 1


def test_jrn_2_an_int_time_widens_to_float_as_the_codec_does() -> None:
    """`at=5` is written as the JSON integer 5 and read back as 5.0, on both decoding paths."""
    event = RunRequested("e1", "c", "r1", "pipeline", at=5)
    body = dumps(event)
    [decoded], torn = decode_page("c", 1, [(1, type_name(event), body, zlib.crc32(body.encode()))])
    assert torn is None
    assert decoded == loads_event(body) and type(decoded.at) is float


def reference_page(conversation_id: str, rows: list[tuple[int, str, str, int]]) -> object:
    """What the codec alone makes of a page: the events before the first torn record, and it."""
    decoded = []
    for sequence, (row_sequence, type_, body, crc) in enumerate(rows, start=1):
        try:
            decoded.append(decode_record(conversation_id, sequence, row_sequence, type_, body, crc))
        except TornRecord as exc:
            return decoded, exc.problem
    return decoded, None


def fast_page(conversation_id: str, rows: list[tuple[int, str, str, int]]) -> object:
    decoded, torn = decode_page(conversation_id, 1, rows)
    return decoded, None if torn is None else torn.problem


def signed(sequence: int, type_: str, body: str) -> tuple[int, str, str, int]:
    """A row whose crc matches its body (as a foreign writer would make it)."""
    return (sequence, type_, body, zlib.crc32(body.encode()))


@given(events(), st.data())
def test_jrn_6_the_fast_path_refuses_what_the_codec_refuses(
    event: Event, data: st.DataObject
) -> None:
    """A crc-valid body with a field changed to any JSON value, or dropped, or an extra field,
    or another conversation or type, decodes (or is torn) exactly as the codec says."""
    document = json.loads(dumps(dataclasses.replace(event, conversation_id="c")))
    change = data.draw(st.sampled_from(["set", "drop", "add", "type"]))
    name = data.draw(st.sampled_from(sorted(document)))
    if change == "set":
        document[name] = data.draw(
            st.one_of(json_values(), st.sampled_from([1.0, 2**70, -0.0, 1e300, "", True]))
        )
    elif change == "drop":
        del document[name]
    elif change == "add":
        document["extra"] = 1
    else:
        document["type"] = data.draw(st.sampled_from(sorted(EVENT_TYPES)))
    rows = [signed(1, type_name(event), json.dumps(document))]
    assert fast_page("c", rows) == reference_page("c", rows)
    decoded, _ = decode_page("c", 1, rows)
    expected, _ = reference_page("c", rows)  # type: ignore[misc]
    assert [field_types(e) for e in decoded] == [field_types(e) for e in expected]


@pytest.mark.parametrize(
    "body",
    [
        '{"type":"run_requested"} ',
        ' {"type":"run_requested"}',
        '{"type":"run_requested","event_id":"e1","at":1e999}',
        '{"type":"run_requested","event_id":"e1","at":NaN}',
        "[]",
        "null",
        "",
    ],
)
def test_jrn_6_odd_bodies_decode_as_the_codec_says(body: str) -> None:
    """Whitespace around a body, numbers out of range, non-objects: the codec decides."""
    event = RunRequested("e1", "c", "r1", "pipeline", at=1.5)
    whole = dumps(event)
    for text in (body, whole + " ", " " + whole, whole.replace("1.5", "1e999")):
        rows = [signed(1, "run_requested", text)]
        assert fast_page("c", rows) == reference_page("c", rows)


def test_jrn_6_a_body_is_one_json_value_on_its_own() -> None:
    """Two crc-valid rows whose bodies are JSON only when joined are torn at the first."""
    first = dumps(RunRequested("e1", "c", "r1", "pipeline"))
    second = dumps(RunRequested("e2", "c", "r2", "pipeline"))
    cut = second.index(',"run_id"')
    rows = [
        signed(1, "run_requested", first + "," + second[:cut]),
        signed(2, "run_requested", second[cut + 1 :]),
    ]
    decoded, torn = decode_page("c", 1, rows)
    assert decoded == [] and torn is not None and torn.sequence == 1
