"""JSON round trip and JSON Schemas for the vocabulary, compiled once from the dataclass fields.

Theory of operation
-------------------
At import, every vocabulary class is read once (`typing.get_type_hints`) and each field gets a
`_Codec`: a pair of functions that encode a value to JSON and decode (with checking) from JSON,
plus a JSON Schema fragment. Encoding and decoding are then loops over those precompiled codecs.
The same field codecs produce the JSON Schemas in `spec/generated/schemas/`, so the documents and
the schemas cannot disagree.

Decoding never trusts its input: a wrong type, a missing field, an unknown field or an unknown
enum value raises `DecodeError` naming the field's path (`policy.backoff.initial`). Nor does it
trust the input's shape (VOC-6): text nested deeper than `MAX_DOCUMENT_DEPTH` is refused before
the parser recurses into it, a payload is measured without recursion when encoding it would
recurse too far, and an error shows a value only in short (a 5,000-digit integer cannot even be
written as text).

Encoding is on the journal's hot path (every event is `dumps`ed once), so it is generated at
import too. Each record's `encode` is one dict display (`{"type": ..., "event_id":
value.event_id, ...}`) calling a codec only for the fields whose codec is not the identity.
`dumps` of an event or directive goes further: one f-string per class writes the JSON text
directly, each field by its declared type (a string through the C string escaper, an int or a
finite float by its `repr`, a JSON payload through one C encoder built once). A value of any
other type (a bool in an int field, an int time, NaN, an object) makes that f-string give up,
and `dumps` encodes the record's dict with `json.dumps` instead: the text is the same, and a value
that is not JSON fails with exactly the error `json.dumps` raises. Two more are refused, because
they would not come back equal: an object key that is not a string (`TypeError`: `json.dumps`
turns it into one) and a string holding a surrogate code point (`ValueError`: a reader joins a
high and a low one into one character). Each shows in the text, and only then is the value
walked.
"""

from __future__ import annotations

import dataclasses
import json
import json.encoder
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from ._errors import DecodeError, PolicyError, shown
from ._limits import MAX_DOCUMENT_DEPTH, SHALLOW_TEXT, text_exceeds, value_exceeds
from ._record import generated_function
from ._vocabulary import (
    DIRECTIVE_TYPES,
    EVENT_TYPES,
    TYPE_NAMES,
    Backoff,
    Directive,
    Event,
    StepDefinition,
    StepFailure,
    StepPolicy,
    StepResult,
)

Decoder = Callable[[object, str], object]
Encoder = Callable[[Any], object]


@dataclass(frozen=True, slots=True)
class _Codec:
    encode: Encoder
    decode: Decoder
    schema: Mapping[str, object]
    expected: str


def _identity(value: Any) -> object:
    return value


def _primitive(kind: type[Any], name: str) -> _Codec:
    def decode(value: object, path: str) -> object:
        # bool is an int in Python but not in JSON's eyes; a float field accepts a JSON integer.
        if kind is float and type(value) is int:
            try:
                return float(value)
            except OverflowError:  # an integer beyond any float
                raise DecodeError(path, name, value) from None
        if kind is int and type(value) is float and value.is_integer():
            return int(value)  # JSON has one number type: 1.0 is the integer 1 (as in the schema)
        if type(value) is not kind or (kind is float and not math.isfinite(value)):  # type: ignore[arg-type]
            raise DecodeError(path, name, value)
        if kind is int and not -_TEXT_INT < value < _TEXT_INT:  # type: ignore[operator]
            raise DecodeError(path, "an integer of at most 4,300 digits", value)
        return value

    return _Codec(_identity, decode, {"type": name}, name)


# An integer JSON text can carry here: Python refuses to parse or write one of more than 4,300
# digits (its default `sys.get_int_max_str_digits()`), so a decoded one must be smaller too.
_TEXT_INT: Final = 10**4300


# json writes an object key that is not a string (an int, a float, True, False, None) as that
# value's text in quotes, so {1: "x"} would come back as {"1": "x"}, another value (VOC-1). Such
# a key always shows in the text as one of these; only text that shows one is walked.
_CONVERTED_KEY: Final = re.compile(r'"(?:-?[0-9][^"]*|true|false|null)":')


def _foreign_key(value: object) -> bool:
    """Whether a JSON-like value holds an object key that is not a string (no recursion)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if not all(isinstance(key, str) for key in item):
                return True
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


def _string_keys(text: str, value: object) -> str:
    """`text`, the JSON of `value`, if every object key in `value` is a string."""
    if _CONVERTED_KEY.search(text) is not None and _foreign_key(value):
        raise TypeError("an object key is not a string: JSON keys are strings (write str(key))")
    return text


# ASCII JSON writes a surrogate code point as a `\ud800`-`\udfff` escape, as it writes half of a
# character beyond U+FFFF; a reader joins a high and a low one into one character, so a string
# holding surrogates (not Unicode text: `surrogateescape` leaves them) would not come back equal.
# Text without this prefix holds no surrogate; only text with it (Korean, emoji) is walked.
_SURROGATE_PREFIX: Final = "\\ud"


def _surrogate(value: object) -> bool:
    """Whether a JSON-like value holds a string with a surrogate code point (no recursion)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode()
                except UnicodeEncodeError:
                    return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


def unicode_text(text: str, document: object) -> str:
    """`text`, the JSON of `document`, if no string in `document` holds a surrogate."""
    if _SURROGATE_PREFIX in text and _surrogate(document):
        raise ValueError(
            "a string holds a surrogate code point, which is not Unicode text and would not "
            "come back equal; decode bytes with errors='replace', not 'surrogateescape'"
        )
    return text


def _json_value(value: object, path: str) -> object:
    # The levels above the payload in its document: one per record and list on its path
    # (`input` is in the event's object, `error.details` in the failure's in the directive's).
    limit = MAX_DOCUMENT_DEPTH - 1 - path.count(".") - path.count("[")
    try:
        text = json.dumps(value, allow_nan=False)
    except RecursionError:
        if not value_exceeds(value, limit):
            raise  # not the value's depth: the caller's own stack is that deep
        raise DecodeError(path, f"a JSON value at most {limit} levels deep", value) from None
    except (TypeError, ValueError):
        raise DecodeError(path, "a JSON value", value) from None
    if _CONVERTED_KEY.search(text) is not None and _foreign_key(value):
        raise DecodeError(path, "a JSON value (its object keys strings)", value)
    if len(text) > 2 * limit and text_exceeds(text, limit):  # valid JSON: n / 2 deep at most
        raise DecodeError(path, f"a JSON value at most {limit} levels deep", value)
    return value


def _enum(kind: type[Enum]) -> _Codec:
    values = [member.value for member in kind]
    lookup = {member.value: member for member in kind}

    def decode(value: object, path: str) -> object:
        try:
            return lookup[value]
        except (KeyError, TypeError, RecursionError):  # unhashable, or a tuple nested deep
            raise DecodeError(path, f"one of {values}", value) from None

    return _Codec(lambda member: member.value, decode, {"enum": values}, f"one of {values}")


def _optional(inner: _Codec) -> _Codec:
    def decode(value: object, path: str) -> object:
        return None if value is None else inner.decode(value, path)

    def encode(value: Any) -> object:
        return None if value is None else inner.encode(value)

    return _Codec(encode, decode, {"anyOf": [inner.schema, {"type": "null"}]}, inner.expected)


def _tuple(inner: _Codec) -> _Codec:
    def decode(value: object, path: str) -> object:
        if not isinstance(value, list):
            raise DecodeError(path, f"a list of {inner.expected}", value)
        return tuple(inner.decode(item, f"{path}[{i}]") for i, item in enumerate(value))

    def encode(value: Any) -> object:
        return [inner.encode(item) for item in value]

    return _Codec(encode, decode, {"type": "array", "items": inner.schema}, "a list")


class _Record:
    """The codec of one dataclass: its field codecs in declaration order."""

    def __init__(self, cls: type[Any], type_name: str | None) -> None:
        self.cls = cls
        self.type_name = type_name
        hints = typing.get_type_hints(cls)
        self.fields: list[tuple[str, _Codec, bool]] = []
        for f in dataclasses.fields(cls):
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            self.fields.append((f.name, _codec_for(hints[f.name]), required))
        self.names = frozenset(name for name, _, _ in self.fields)
        self.encode: Callable[[Any], dict[str, object]] = _compile_encoder(
            cls, type_name, self.fields
        )

    def decode(self, value: object, path: str) -> Any:
        if not isinstance(value, dict):
            raise DecodeError(path or "$", f"an object ({self.cls.__name__})", value)
        prefix = f"{path}." if path else ""
        allowed = self.names if self.type_name is None else self.names | {"type"}
        for key in value:
            if key not in allowed:
                name = key if type(key) is str else shown(key)  # a document built in Python
                raise DecodeError(f"{prefix}{name}", f"no such field on {self.cls.__name__}", key)
        kwargs: dict[str, object] = {}
        for name, codec, required in self.fields:
            if name in value:
                kwargs[name] = codec.decode(value[name], f"{prefix}{name}")
            elif required:
                raise DecodeError(f"{prefix}{name}", "a value (the field is required)", None)
        try:
            return self.cls(**kwargs)
        except PolicyError as exc:  # a value the record's own checks refuse
            raise DecodeError(path or "$", "a valid policy", exc.message) from None

    def schema(self) -> dict[str, object]:
        properties: dict[str, object] = {}
        if self.type_name is not None:
            properties["type"] = {"const": self.type_name}
        for name, codec, _ in self.fields:
            properties[name] = dict(codec.schema)
        required = [name for name, _, req in self.fields if req]
        if self.type_name is not None:
            required.insert(0, "type")
        return {
            "title": self.cls.__name__,
            "description": (self.cls.__doc__ or "").strip().splitlines()[0],
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }


def _compile_encoder(
    cls: type[Any], type_name: str | None, fields: list[tuple[str, _Codec, bool]]
) -> Callable[[Any], dict[str, object]]:
    """`encode(value)` of one record as a single dict display; identity fields are read directly."""
    scope: dict[str, Any] = {}
    items = [] if type_name is None else [f'"type": {type_name!r}']
    for index, (name, codec, _) in enumerate(fields):
        if codec.encode is _identity:
            items.append(f"{name!r}: value.{name}")
        else:
            scope[f"_encode_{index}"] = codec.encode
            items.append(f"{name!r}: _encode_{index}(value.{name})")
    source = "def encode(value):\n    return {" + ", ".join(items) + "}\n"
    encode: Callable[[Any], dict[str, object]] = generated_function(
        source, scope, "encode", cls.__name__
    )
    return encode


_NESTED: dict[type[Any], _Record] = {}


def _nested(cls: type[Any]) -> _Codec:
    record = _NESTED.get(cls) or _NESTED.setdefault(cls, _Record(cls, None))
    return _Codec(record.encode, record.decode, {"$ref": f"#/$defs/{cls.__name__}"}, cls.__name__)


def _codec_for(hint: Any) -> _Codec:
    origin = typing.get_origin(hint)
    if hint is Any:
        return _Codec(_identity, _json_value, {}, "a JSON value")
    if hint in (str, int, float, bool):
        return _primitive(
            hint, {str: "string", int: "integer", float: "number", bool: "boolean"}[hint]
        )
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _enum(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _nested(hint)
    if origin in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return _optional(_codec_for(args[0]))
    if origin is tuple:
        items = typing.get_args(hint)
        if len(items) == 2 and items[1] is Ellipsis:
            return _tuple(_codec_for(items[0]))
    raise TypeError(f"no JSON codec for field type {hint!r}")  # pragma: no cover - import time


_EVENTS: Final = {name: _Record(cls, name) for name, cls in EVENT_TYPES.items()}
_DIRECTIVES: Final = {name: _Record(cls, name) for name, cls in DIRECTIVE_TYPES.items()}
_BY_CLASS: Final = {record.cls: record for record in (*_EVENTS.values(), *_DIRECTIVES.values())}
for _cls in (StepDefinition, StepPolicy, Backoff, StepResult, StepFailure):
    _nested(_cls)


def to_json(value: Event | Directive) -> dict[str, object]:
    """The JSON object of an event or directive, with its `type` first."""
    return _BY_CLASS[type(value)].encode(value)


def _slow_dumps(document: object) -> str:
    text = json.dumps(document, separators=(",", ":"), allow_nan=False)
    return unicode_text(_string_keys(text, document), document)


def _fast_encoder() -> Callable[[object], str]:
    """The compact encoder of JSON payloads, built once (json.dumps builds one per call)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - an interpreter without the C accelerator
        return _slow_dumps
    try:
        # markers=None: no circular-reference check (a cycle recurses until RecursionError,
        # and `dumps` then encodes again through json.dumps, which names the cycle).
        chunks = make(
            None,
            json.JSONEncoder().default,
            json.encoder.encode_basestring_ascii,
            None,
            ":",
            ",",
            False,  # sort_keys
            False,  # skipkeys
            False,  # allow_nan
        )
    except TypeError:  # pragma: no cover - another interpreter's signature: stay correct
        return _slow_dumps

    def encode(document: object) -> str:
        return "".join(chunks(document, 0))

    sample = {"a": [1, 2.5, None, True, "\u00e9\n"], "b": {"c": -0.0}}
    return encode if encode(sample) == _slow_dumps(sample) else _slow_dumps


_encode_compact: Final = _fast_encoder()


_converted_key: Final = _CONVERTED_KEY.search


def _payload_text(value: object) -> str:
    if value is None:
        return "null"
    text = _encode_compact(value)
    if _converted_key(text) is not None and _foreign_key(value):
        _string_keys(text, value)  # raises, saying why
    return text


def _unexpected(value: object) -> str:
    raise TypeError(f"{type(value).__name__} is encoded by json.dumps")


# The JSON text of a field's value, by its declared type: an f-string replacement field, `@`
# standing for the attribute. Any other type goes through its codec and `_payload_text`.
_FIELD_TEXT: Final[dict[Any, str]] = {
    str: "_string(@)",
    str | None: '"null" if @ is None else _string(@)',
    int: "_int(@) if type(@) is int else _unexpected(@)",
    int | None: '"null" if @ is None else _int(@) if type(@) is int else _unexpected(@)',
    float: "_float(@) if type(@) is float and @ - @ == 0.0 else _unexpected(@)",
    bool: '"true" if @ is True else "false" if @ is False else _unexpected(@)',
    Any: "_payload_text(@)",
}


def _literal(text: str) -> str:
    """JSON text as the literal part of a single-quoted f-string."""
    assert "'" not in text and "\\" not in text
    return text.replace("{", "{{").replace("}", "}}")


def _compile_dumps(record: _Record) -> Callable[[Any], str]:
    """`dumps` of one event or directive class: its JSON text written by one f-string."""
    hints = typing.get_type_hints(record.cls)
    scope: dict[str, Any] = {
        "_string": json.encoder.encode_basestring_ascii,
        "_int": int.__repr__,
        "_float": float.__repr__,
        "_unexpected": _unexpected,
        "_payload_text": _payload_text,
        "_encode": record.encode,
        "_slow_dumps": _slow_dumps,
        "unicode_text": unicode_text,
        "_surrogate_prefix": _SURROGATE_PREFIX,
    }
    parts = [_literal("{" + json.dumps("type") + ":" + json.dumps(record.type_name))]
    for index, (name, codec, _) in enumerate(record.fields):
        template = _FIELD_TEXT.get(hints[name])
        if template is None:
            scope[f"_encode_{index}"] = codec.encode
            template = f"_payload_text(_encode_{index}(@))"
        parts.append(_literal("," + json.dumps(name) + ":"))
        parts.append("{" + template.replace("@", f"value.{name}") + "}")
    parts.append(_literal("}"))
    source = (
        "def dumps(value):\n"
        "    try:\n"
        f"        text = f'{''.join(parts)}'\n"
        "    except Exception:  # not the declared type, or not JSON: json.dumps decides\n"
        "        return _slow_dumps(_encode(value))\n"
        "    if _surrogate_prefix in text:  # perhaps a string that is not Unicode text\n"
        "        unicode_text(text, _encode(value))\n"
        "    return text\n"
    )
    dumps: Callable[[Any], str] = generated_function(source, scope, "dumps", record.cls.__name__)
    return dumps


_DUMPS: Final = {record.cls: _compile_dumps(record) for record in _BY_CLASS.values()}


def dumps(value: Event | Directive) -> str:
    """`to_json` as a compact string, fields in declaration order (the journal's record format)."""
    return _DUMPS[type(value)](value)


def _decode_typed(document: object, registry: Mapping[str, _Record], what: str) -> Any:
    if not isinstance(document, dict):
        raise DecodeError("$", f"an object with a 'type' naming {what}", document)
    name = document.get("type")
    record = registry.get(name) if isinstance(name, str) else None
    if record is None:
        raise DecodeError("type", f"one of {sorted(registry)}", name)
    return record.decode(document, "")


def event_from_json(document: object) -> Event:
    """Decode one event from its JSON object; `DecodeError` names the first bad field."""
    result: Event = _decode_typed(document, _EVENTS, "an event")
    return result


def directive_from_json(document: object) -> Directive:
    """Decode one directive from its JSON object; `DecodeError` names the first bad field."""
    result: Directive = _decode_typed(document, _DIRECTIVES, "a directive")
    return result


def _parse(text: str | bytes) -> object:
    """The JSON document of `text`, which is at most `MAX_DOCUMENT_DEPTH` deep (VOC-6)."""
    try:
        if not isinstance(text, str):  # as json.loads reads bytes: UTF-8, -16 or -32
            text = bytes(text).decode(json.detect_encoding(text), "surrogatepass")
        if len(text) > SHALLOW_TEXT and text_exceeds(text, MAX_DOCUMENT_DEPTH):
            raise DecodeError("$", f"JSON text at most {MAX_DOCUMENT_DEPTH} levels deep", text)
        return json.loads(text)
    except ValueError as exc:  # not JSON, not text, or an integer too long to convert
        raise DecodeError("$", "JSON text", str(exc)) from None


def loads_event(text: str | bytes) -> Event:
    """Decode one event from JSON text."""
    return event_from_json(_parse(text))


def loads_directive(text: str | bytes) -> Directive:
    """Decode one directive from JSON text."""
    return directive_from_json(_parse(text))


def value_to_json(value: Any) -> dict[str, object]:
    """The JSON object of a nested vocabulary value (a `StepDefinition`, a `StepFailure`, ...)."""
    return _NESTED[type(value)].encode(value)


def value_from_json(cls: type[Any], document: object) -> Any:
    """Decode a nested vocabulary value of class `cls`."""
    return _NESTED[cls].decode(document, "")


def json_schema(cls: type[Any]) -> dict[str, object]:
    """The JSON Schema (draft 2020-12) of one event, directive or nested value class."""
    record = _BY_CLASS.get(cls) or _NESTED[cls]
    schema: dict[str, object] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"interruptible/{TYPE_NAMES.get(cls, cls.__name__)}.schema.json",
    }
    schema.update(record.schema())
    defs = _referenced_defs(record)
    if defs:
        schema["$defs"] = defs
    return schema


def _referenced_defs(record: _Record) -> dict[str, object]:
    defs: dict[str, object] = {}
    pending = [record]
    while pending:
        current = pending.pop()
        for _, codec, _ in current.fields:
            for cls, nested in _NESTED.items():
                if cls.__name__ not in defs and f"#/$defs/{cls.__name__}" in json.dumps(
                    codec.schema
                ):
                    defs[cls.__name__] = nested.schema()
                    pending.append(nested)
    return dict(sorted(defs.items()))
