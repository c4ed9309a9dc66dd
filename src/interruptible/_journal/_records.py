"""How an event becomes a row of the SQLite journal, and how a row is checked on the way back.

Theory of operation
-------------------
A row is (conversation_id, sequence, type, body, crc): `body` is `_codec.dumps(event)` (compact,
ASCII-only JSON, so its UTF-8 bytes are its characters) and `crc` is the CRC-32 of those bytes.
SQLite's own journaling already makes a torn *page* impossible; the crc and the checks of
`decode_record` catch what SQLite cannot: a record damaged on disk below it, written by a foreign
tool, or missing from the middle of a conversation (JRN-6).

A record is *whole* when its sequence follows the previous one, its crc matches, its body decodes
to an event of the vocabulary, and that event names the row's conversation and type. The first
record of a conversation that is not whole is *torn*; `TornRecord` says where and why, and
recovery (JRN-9) or `read` (JRN-6) decide what to do about it.

Reading fast. `decode_record` decodes through the codec, which checks every field of untrusted
JSON and costs two thirds of a replay's decoding. A record whose crc matches holds exactly what
`encode_rows` wrote, and that was an event `reduce` would accept (JRN-10). So `decode_page`
parses a whole page of such bodies with one `json.loads`, builds each event straight from its
fields, and keeps the cheap field check `reduce` makes anyway; anything unexpected (an unknown
field, a wrong type, NaN) falls back to `decode_record` for that record. The shortcut can only
be slower than the codec, never different: a test checks both agree on every event.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from .._codec import dumps, loads_event
from .._core._validate import event_problem
from .._errors import DecodeError, JournalError
from .._vocabulary import EVENT_TYPES, TYPE_NAMES, Event
from ._check import check_event

Row = tuple[str, int, str, str, int]

_crc32: Final = zlib.crc32


@dataclass(frozen=True, slots=True)
class RecoveryNote:
    """A conversation whose tail was torn: where its last whole event is, and what was wrong."""

    conversation_id: str
    last_good: int  # the sequence of the last whole event (0: none survived)
    first_bad: int  # the sequence of the first torn record
    quarantined: int  # records moved from `events` to `quarantine` (0 when only verified)
    problem: str


class TornRecord(Exception):
    """A record that is not whole (internal: `read` and recovery turn it into their answer)."""

    def __init__(self, sequence: int, expected: int, problem: str) -> None:
        super().__init__(problem)
        self.sequence = sequence
        self.expected = expected
        self.problem = problem


def encode_rows(conversation_id: str, expected_last: int, events: Sequence[Event]) -> list[Row]:
    """The rows of `events` appended after `expected_last`; `JournalError` if one cannot be."""
    rows: list[Row] = []
    sequence = expected_last
    for index, event in enumerate(events):
        check_event(conversation_id, index, event)
        name = TYPE_NAMES[type(event)]
        try:
            body = dumps(event)
        except Exception as exc:  # any failure of the encoder means "not a JSON event"
            raise JournalError(
                f"item {index} of the batch ({name}) cannot be encoded as JSON: {exc}; its "
                "payloads must be JSON values (no NaN, no objects of other classes).",
                conversation_id=conversation_id,
                reason="unencodable_event",
            ) from None
        sequence += 1
        rows.append((conversation_id, sequence, name, body, _crc32(body.encode())))
    return rows


def decode_record(
    conversation_id: str, expected: int, sequence: int, type_: Any, body: Any, crc: Any
) -> Event:
    """The event of a whole record at position `expected`; `TornRecord` says what is wrong."""
    if sequence != expected:
        raise TornRecord(sequence, expected, f"sequence gap: expected {expected}, found {sequence}")
    if type(body) is str:
        data = body.encode()
    elif type(body) is bytes:
        data = body
    else:
        raise TornRecord(sequence, expected, f"body is {type(body).__name__}, not JSON text")
    if _crc32(data) != crc:
        raise TornRecord(sequence, expected, f"crc mismatch (stored {crc!r})")
    try:
        event = loads_event(data)
    except DecodeError as exc:
        raise TornRecord(sequence, expected, f"body does not decode: {exc.message}") from None
    if event.conversation_id != conversation_id:
        raise TornRecord(sequence, expected, f"event names conversation {event.conversation_id!r}")
    if TYPE_NAMES[type(event)] != type_:
        raise TornRecord(sequence, expected, f"type column {type_!r} but the body holds another")
    return event


def find_tear(
    conversation_id: str, rows: Sequence[tuple[int, Any, Any, Any]], first: int
) -> TornRecord | None:
    """The first torn record among `rows` (sequence, type, body, crc), which start at `first`."""
    return decode_page(conversation_id, first, rows)[1]


# --- the fast path of `read` -------------------------------------------------------------------


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity: `dumps` never writes them


_parse: Final = json.JSONDecoder(parse_constant=_no_constant).decode


def _field_plan(cls: type[Any]) -> tuple[tuple[tuple[str, type[Enum]], ...], tuple[str, ...]]:
    """A class's enum fields (decoded from their value) and float fields (a JSON int widens)."""
    hints = typing.get_type_hints(cls)
    enums, floats = [], []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        args = (
            typing.get_args(hint)
            if typing.get_origin(hint) in (typing.Union, types.UnionType)
            else (hint,)
        )
        if float in args:
            floats.append(f.name)
        for arg in args:
            if isinstance(arg, type) and issubclass(arg, Enum):
                enums.append((f.name, arg))
    return tuple(enums), tuple(floats)


_PLANS: Final = {name: (cls, *_field_plan(cls)) for name, cls in EVENT_TYPES.items()}


def _trusted(conversation_id: str, type_: Any, document: Any) -> Event | None:
    """The event of a crc-checked body, or None when anything is unexpected (use the codec)."""
    if type(document) is not dict or document.pop("type", None) != type_:
        return None
    plan = _PLANS.get(type_)
    if plan is None:
        return None
    cls, enums, floats = plan
    try:
        for name, kind in enums:
            if name in document and document[name] is not None:
                document[name] = kind(document[name])
        for name in floats:
            if type(document.get(name)) is int:
                document[name] = float(document[name])
        event: Event = cls(**document)
    except (TypeError, ValueError):
        return None
    if event.conversation_id != conversation_id or event_problem(event) is not None:
        return None
    return event


def decode_page(
    conversation_id: str, expected: int, rows: Sequence[tuple[int, Any, Any, Any]]
) -> tuple[list[Event], TornRecord | None]:
    """The events of the whole records `rows` start with (at `expected`), and the first torn one."""
    torn = None
    for index, (sequence, type_, body, crc) in enumerate(rows):
        if sequence == expected + index and type(body) is str and _crc32(body.encode()) == crc:
            continue
        try:  # a suspicious record: the codec says whether it is whole after all
            decode_record(conversation_id, expected + index, sequence, type_, body, crc)
        except TornRecord as exc:
            torn, rows = exc, rows[:index]
            break
    documents: list[Any] | None = None
    if all(type(row[2]) is str for row in rows):
        try:
            documents = _parse("[" + ",".join(row[2] for row in rows) + "]")
        except ValueError:
            documents = None  # one body is not JSON: decode_record finds which
    events: list[Event] = []
    for index, (sequence, type_, body, crc) in enumerate(rows):
        event = None if documents is None else _trusted(conversation_id, type_, documents[index])
        if event is None:
            try:
                event = decode_record(conversation_id, expected + index, sequence, type_, body, crc)
            except TornRecord as exc:
                return events, exc
        events.append(event)
    return events, torn
