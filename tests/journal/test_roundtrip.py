"""Property tests: any events survive the SQLite journal unchanged, by either decoding path."""

from __future__ import annotations

import dataclasses
import tempfile
import zlib
from collections import defaultdict
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interruptible import Event, RunRequested, dumps, loads_event, type_name
from interruptible._journal import AppendBatch, SQLiteJournal
from interruptible._journal._records import decode_page
from interruptible.testing.strategies import events

# Each example opens a SQLite file: fewer examples than the profile's default keep this quick.
FILE_SETTINGS = settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])


def by_conversation(drawn: list[Event]) -> dict[str, list[Event]]:
    """The drawn events grouped by their conversation, in drawn order."""
    grouped: dict[str, list[Event]] = defaultdict(list)
    for event in drawn:
        grouped[event.conversation_id].append(event)
    return grouped


@FILE_SETTINGS
@given(st.lists(events(), max_size=30), st.integers(min_value=1, max_value=5))
def test_jrn_2_any_events_round_trip_through_sqlite(drawn: list[Event], chunk: int) -> None:
    """Events appended in chunks (and by group commit) read back equal, in order, after reopen."""
    grouped = by_conversation(drawn)
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
                    journal.append_many(batches)
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
