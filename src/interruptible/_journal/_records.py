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
JSON and costs most of a replay's decoding. A record whose crc matches holds, barring a foreign
writer, exactly what `encode_rows` wrote, and that was an event `reduce` would accept (JRN-10).
So `decode_page` parses each such body with the C scanner and hands the document to a *builder*
generated per event class at import: it reads every field by name, checks each value's type with
one `type(v) is ...` test (widening a JSON integer in a float field, looking an enum up by its
value), requires exactly the class's fields and its `type`, and calls the class. Numbers are
parsed finite (the codec refuses NaN and infinities anywhere). A builder accepts exactly what the
codec decodes to the same event; anything else (an unknown or missing field, a wrong type, text
after the JSON value, a record that is not whole) goes to `decode_record` for that record, which
decides. The shortcut can only hand a record to the codec, never decode it differently: tests
check both agree on every event, and on crc-valid bodies with a field changed, dropped or added.
Each body is scanned on its own (not as one page-wide JSON array): a body that is JSON only
together with its neighbour is not whole.

Hostile records (JRN-15, JRN-16). A body nested deeper than the codec decodes
(`MAX_DOCUMENT_DEPTH`, VOC-6) would make the C scanner recurse until `RecursionError`, at a depth
that depends on the caller's stack: the fast path measures a long body first (a length, then a
count of brackets; only a body that fails both is scanned) and hands a deep one to the codec,
which refuses it, so it is torn like a bad crc. Writing measures the same way, and refuses such
an event, so only a foreign writer can leave one. A TEXT column whose bytes are not UTF-8 (only a
foreign writer can store one: SQLite does not check) cannot become a Python `str`; the SQLite
journal reads it as `UndecodableText` (its bytes), and such a record is torn too.
"""

from __future__ import annotations

import dataclasses
import json
import typing
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from .._codec import dumps, loads_event
from .._errors import DecodeError, JournalError, shown
from .._limits import MAX_DOCUMENT_DEPTH, SHALLOW_TEXT, text_exceeds
from .._record import generated_function
from .._vocabulary import EVENT_TYPES, TYPE_NAMES, Event
from ._check import check_event, is_too_deep, too_deep

Row = tuple[str, int, str, str, int, int | None]  # ..., crc, the writer's owner epoch

_crc32: Final = zlib.crc32


@dataclass(frozen=True, slots=True)
class RecoveryNote:
    """A conversation whose tail was torn: where its last whole event is, and what was wrong."""

    conversation_id: str
    last_good: int  # the sequence of the last whole event (0: none survived)
    first_bad: int  # the sequence of the first torn record
    quarantined: int  # records moved from `events` to `quarantine` (0 when only verified)
    problem: str


class UndecodableText(bytes):
    """The bytes of a TEXT column that are not UTF-8, as a foreign writer left them (JRN-16)."""


class TornRecord(Exception):
    """A record that is not whole (internal: `read` and recovery turn it into their answer)."""

    def __init__(self, sequence: int, expected: int, problem: str) -> None:
        super().__init__(problem)
        self.sequence = sequence
        self.expected = expected
        self.problem = problem


def encode_rows(
    conversation_id: str, expected_last: int, events: Sequence[Event], epoch: int | None = None
) -> list[Row]:
    """The rows of `events` appended after `expected_last`; `JournalError` if one cannot be."""
    rows: list[Row] = []
    sequence = expected_last
    for index, event in enumerate(events):
        check_event(conversation_id, index, event)
        try:
            body = dumps(event)
        except RecursionError:
            if not is_too_deep(event):
                raise  # not the event's depth: the caller's own stack is that deep
            raise too_deep(conversation_id, index, event) from None
        except Exception as exc:  # any failure of the encoder means "not a JSON event"
            raise JournalError(
                f"item {index} of the batch ({TYPE_NAMES[type(event)]}) cannot be encoded as "
                f"JSON: {exc}; its payloads must be JSON values (no NaN, no objects of other "
                "classes).",
                conversation_id=conversation_id,
                reason="unencodable_event",
            ) from None
        # JRN-15: a body the codec would not decode again is never written.
        if len(body) > SHALLOW_TEXT and text_exceeds(body, MAX_DOCUMENT_DEPTH):
            raise too_deep(conversation_id, index, event)
        sequence += 1
        rows.append(
            (
                conversation_id,
                sequence,
                TYPE_NAMES[type(event)],
                body,
                _crc32(body.encode()),
                epoch,
            )
        )
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
    elif type(body) is UndecodableText:
        raise TornRecord(sequence, expected, "body is TEXT whose bytes are not UTF-8")
    else:
        raise TornRecord(sequence, expected, f"body is {type(body).__name__}, not JSON text")
    if _crc32(data) != crc:
        raise TornRecord(sequence, expected, f"crc mismatch (stored {shown(crc)})")
    try:
        event = loads_event(data)
    except DecodeError as exc:
        raise TornRecord(sequence, expected, f"body does not decode: {exc.message}") from None
    if event.conversation_id != conversation_id:
        raise TornRecord(
            sequence, expected, f"event names conversation {shown(event.conversation_id)}"
        )
    if TYPE_NAMES[type(event)] != type_:
        raise TornRecord(
            sequence, expected, f"type column {shown(type_)} but the body holds another"
        )
    return event


def find_tear(
    conversation_id: str, rows: Sequence[tuple[int, Any, Any, Any]], first: int
) -> TornRecord | None:
    """The first torn record among `rows` (sequence, type, body, crc), which start at `first`."""
    return decode_page(conversation_id, first, rows)[1]


# --- the fast path of `read` -------------------------------------------------------------------


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity: `dumps` never writes them


def _finite(text: str) -> float:
    value = float(text)
    if value - value != 0.0:  # 1e999 parses to inf, which the codec refuses as not JSON
        raise ValueError(f"{text} is not a finite number")
    return value


# Parses one body at a given offset: (document, end). Every number it gives is finite, so a
# document it accepts holds only values the codec accepts as JSON.
_scan: Final[Callable[[str, int], tuple[Any, int]]] = json.JSONDecoder(
    parse_constant=_no_constant, parse_float=_finite
).scan_once  # type: ignore[attr-defined]  # the C scanner, as JSONDecoder.raw_decode uses it

Builder = Callable[[str, Any], Event | None]

# How a field's value is checked (and converted) on the fast path, by its declared type: `@` is
# the value. A check that fails sends the record to the codec. Each accepts exactly the JSON
# values the codec's decoder turns into the same Python value.
_FIELD_CHECKS: Final[dict[Any, str]] = {
    str: "type(@) is str",
    str | None: "@ is None or type(@) is str",
    int: "type(@) is int",
    int | None: "@ is None or type(@) is int",
    bool: "type(@) is bool",
    Any: "True",  # any parsed JSON value (finite numbers only: `_scan`)
}


def _compile_builder(type_name: str, cls: type[Any]) -> Builder | None:
    """`build(conversation_id, document)`: the event of a parsed body, or None (use the codec).

    None for a class with a field type the table above does not know: the codec decodes it.
    """
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    scope: dict[str, Any] = {"_cls": cls, "_type": type_name}
    reads, checks, converts = [], [], []
    for index, f in enumerate(fields):
        value, hint = f"v{index}", hints[f.name]
        reads.append(f"        {value} = document[{f.name!r}]")
        if hint is float:  # a JSON integer widens, as in the codec
            converts.append(f"    if type({value}) is not float:")
            converts.append(f"        if type({value}) is not int:")
            converts.append("            return None")
            converts.append(f"        {value} = float({value})")
        elif isinstance(hint, type) and issubclass(hint, Enum):
            scope[f"_members_{index}"] = {member.value: member for member in hint}
            converts.append(
                f"    {value} = _members_{index}.get({value}) if type({value}) is str else None"
            )
            converts.append(f"    if {value} is None:")
            converts.append("        return None")
        elif hint in _FIELD_CHECKS:
            if _FIELD_CHECKS[hint] != "True":
                checks.append("(" + _FIELD_CHECKS[hint].replace("@", value) + ")")
        else:
            return None
        if f.name == "conversation_id":
            checks.append(f"{value} == conversation_id")
    lines = [
        "def build(conversation_id, document):",
        f"    if type(document) is not dict or len(document) != {len(fields) + 1}:",
        "        return None",
        "    try:",
        '        if document["type"] != _type:',
        "            return None",
        *reads,
        "    except KeyError:",
        "        return None",
        f"    if not ({' and '.join(checks) or 'True'}):",
        "        return None",
        *converts,
        f"    return _cls({', '.join(f'v{index}' for index in range(len(fields)))})",
    ]
    build: Builder = generated_function("\n".join(lines) + "\n", scope, "build", cls.__name__)
    return build


_BUILDERS: Final = {name: _compile_builder(name, cls) for name, cls in EVENT_TYPES.items()}


def decode_page(
    conversation_id: str, expected: int, rows: Sequence[tuple[int, Any, Any, Any]]
) -> tuple[list[Event], TornRecord | None]:
    """The events of the whole records `rows` start with (at `expected`), and the first torn one."""
    events: list[Event] = []
    builders = _BUILDERS
    scan = _scan
    for index, (sequence, type_, body, crc) in enumerate(rows):
        if sequence == expected + index and type(body) is str and _crc32(body.encode()) == crc:
            build = builders.get(type_)
            # A body that may nest deeper than the codec decodes goes to the codec (JRN-15).
            if build is not None and (
                len(body) <= SHALLOW_TEXT or not text_exceeds(body, MAX_DOCUMENT_DEPTH)
            ):
                try:
                    document, end = scan(body, 0)
                except (StopIteration, ValueError):
                    end = -1  # not JSON text: the codec says why
                if end == len(body):
                    event = build(conversation_id, document)
                    if event is not None:
                        events.append(event)
                        continue
        try:  # a suspicious record: the codec says whether it is whole after all
            event = decode_record(conversation_id, expected + index, sequence, type_, body, crc)
        except TornRecord as exc:
            return events, exc
        events.append(event)
    return events, None
