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
  compact JSON text. The runtime checks both where values come from outside (RT-22).
- A *document* (the JSON of one event or directive) is at most `MAX_DOCUMENT_DEPTH` levels deep:
  the codec refuses a deeper one before parsing it (VOC-6), a journal refuses to write one
  (JRN-15), and so a reader never recurses further than that.

Depth counts arrays and objects: a scalar is 0 deep, `[]` and `{"a": 1}` are 1, `[[1]]` is 2.

Checking text is cheap in the common case: JSON text nests no deeper than its number of `[`
and `{` (a C-speed count), and valid JSON text of `n` characters no deeper than `n / 2` (a length,
`SHALLOW_TEXT`). Only text that passes neither is measured exactly, in C-speed passes: escapes
dropped, everything but brackets and quotes deleted, strings cut out, and the deepest running
sum of +1 per opener and -1 per closer taken; about the cost of parsing the text.
"""

from __future__ import annotations

from array import array
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

# Valid JSON text no longer than this nests at most MAX_DOCUMENT_DEPTH levels (each level opens
# and closes), so hot paths compare a length with it before calling `text_exceeds`. Text that is
# not JSON may open up to this many brackets before a parser fails on it: a recursion this deep
# still stays far within Python's stack, and the text is refused as not JSON anyway.
SHALLOW_TEXT: Final = 2 * MAX_DOCUMENT_DEPTH

# Every byte but brackets and quotes, deleted by `bytes.translate` (one C loop).
_NOT_STRUCTURE: Final = bytes(b for b in range(256) if b not in b'[]{}"')
# Signed steps for `array("b")`: +1 for an opener, -1 (255) for a closer.
_STEPS: Final = bytes(1 if b in b"[{" else 255 if b in b"]}" else 0 for b in range(256))


def text_exceeds(text: str, limit: int) -> bool:
    """Whether JSON text nests arrays and objects more than `limit` levels deep.

    Text that is not JSON is measured at least as deep as a parser reading it would go before
    it stops (a parser reads a valid prefix, and that prefix is measured exactly).
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    if "\\" in text:  # escaped backslashes, then escaped quotes: what is left delimits strings
        text = text.replace("\\\\", "").replace('\\"', "")
    kept = text.encode("utf-8", "surrogatepass").translate(None, _NOT_STRUCTURE)
    # Between the quotes of a string (the odd pieces; a last odd piece is a string that never
    # ends, where a parser stops) brackets do not count.
    outside = b"".join(kept.split(b'"')[::2])
    # The deepest point is the largest running sum of the steps (C loops, no Python per byte).
    return len(outside) > limit and max(accumulate(array("b", outside.translate(_STEPS)))) > limit


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
