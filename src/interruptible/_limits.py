"""How deep and how large a JSON value may be, and cheap checks of values and text against that.

Theory of operation
-------------------
Python's JSON encoder and decoder recurse once per level of nesting, on the caller's own stack,
so a value nested about a thousand levels deep raises `RecursionError` at a depth that depends
on how deep the caller already was: an append may succeed where a later read fails, and a task
that meets it ends without an answer. Limits well below the interpreter's make the outcome a
rule instead of an accident:

- A *payload* (a run's input, a step's output, a progress value, a gate's answer, a failure's
  details) is at most `MAX_PAYLOAD_DEPTH` levels deep and `MAX_PAYLOAD_BYTES` characters of
  compact JSON text. The runtime checks both where values come from outside (RT-17).
- A *document* (the JSON of one event or directive) is at most `MAX_DOCUMENT_DEPTH` levels deep:
  the codec refuses a deeper one before parsing it (VOC-6), a journal refuses to write one
  (JRN-15), and so a reader never recurses further than that.

Depth counts arrays and objects: a scalar is 0 deep, `[]` and `{"a": 1}` are 1, `[[1]]` is 2.

Checking text is cheap in the common case: JSON text of `n` characters nests at most `n / 2`
levels (each level opens and closes), and no deeper than its number of `[` and `{`; both bounds
cost a length or a C-speed count. Only text that passes neither is measured exactly: its strings
are cut out (brackets inside them do not count) and the deepest point of what is left is found,
all in C-speed loops, in time linear in the text's length.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Final

# serde_json's default recursion limit: JSON that people and models write nests a few levels;
# 128 leaves room for any honest document and is far below the interpreter's stack.
MAX_PAYLOAD_DEPTH: Final = 128

# 16 MiB, MongoDB's largest document: a payload is a message, not a file; a larger value belongs
# in a store, passed by reference. Counted in characters of compact JSON text, which is ASCII
# (every other character escaped), so characters are the bytes the journal writes.
MAX_PAYLOAD_BYTES: Final = 16 * 1024 * 1024

# A payload at its limit inside the vocabulary's records (two levels at most) and inside what a
# mode wraps around an output (an agent loop puts tool results in its messages), with room to
# spare; and far below Python's recursion limit (1,000 frames, shared with the caller's stack),
# so the C scanner decoding a document this deep never runs out of stack.
MAX_DOCUMENT_DEPTH: Final = 256

# JSON text no longer than this cannot nest deeper than MAX_DOCUMENT_DEPTH: hot paths compare
# a length with it before calling `text_exceeds`.
SHALLOW_TEXT: Final = 2 * MAX_DOCUMENT_DEPTH

# A whole JSON string (the unrolled form, which never backtracks), or the rest of the text after
# a quote that is never closed: a parser stops inside it, so nothing after it counts.
_STRINGS: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS: Final = re.compile(r"[^\[\]{}]+")
_STEP: Final = {"[": 1, "{": 1, "]": -1, "}": -1}


def text_exceeds(text: str, limit: int) -> bool:
    """Whether JSON text nests arrays and objects more than `limit` levels deep.

    Text that is not JSON is measured as deep as a parser would go before it stops (or deeper:
    a bracket after a stray closer still counts), never shallower.
    """
    if len(text) <= 2 * limit or text.count("[") + text.count("{") <= limit:
        return False
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    # The deepest point is the largest running sum of +1 per opener, -1 per closer (C loops).
    return len(brackets) > limit and max(accumulate(map(_STEP.__getitem__, brackets))) > limit


def value_exceeds(value: object, limit: int) -> bool:
    """Whether a Python value nests lists, tuples and dicts more than `limit` levels deep.

    It walks level by level, without recursion; a value that contains itself is infinitely deep.
    """
    level = [value]
    depth = 0
    while True:
        below: list[object] = []
        nested = False
        for item in level:
            if isinstance(item, list | tuple):
                nested = True
                below.extend(item)
            elif isinstance(item, dict):
                nested = True
                below.extend(item.values())
        if not nested:
            return False
        depth += 1
        if depth > limit:
            return True
        level = below
