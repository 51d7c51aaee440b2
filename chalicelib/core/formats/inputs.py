"""Reading untrusted bytes and numbers: one bounded parser for each, so no input can cost a 500.

Everything the controller reads from outside (request paths, queries and bodies, notify posts,
lainlet's answer, the annotations inside it, daemons' answers) goes through these before any other
code looks at it. Each limit exists because Python would otherwise fail in a way the caller does
not expect: ``int()`` refuses more than 4,300 digits with a ``ValueError`` about the interpreter,
``json.loads`` raises ``RecursionError`` (not ``ValueError``) on deep nesting and accepts ``NaN``,
and a lone surrogate (``"\\ud800"``) decodes fine but cannot be encoded again when it is sent on.
Pure: no I/O.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.errors import BadRequest, PayloadTooLarge

KIB = 1024


def preview(raw: Any, limit: int = 40) -> str:
    """``repr`` of an input cut to ``limit`` characters, for error messages that quote input."""
    text = repr(raw)
    return text if len(text) <= limit else text[: limit - 5] + "…" + text[-4:]


def bounded_int(raw: str | None, name: str, lo: int, hi: int, *, code: str | None = None,
                kind: str = "a whole number") -> int:
    """A whole number ``lo``..``hi`` written in ASCII digits; anything else is a 400 naming ``name``.

    The digit count is checked before ``int()``, so a 5,000-digit value is a 400, not a 500."""
    text = (raw or "").strip()
    digits = text.lstrip("0") or "0"
    if not (text.isascii() and text.isdigit()) or len(digits) > len(str(hi)) or not lo <= int(digits) <= hi:
        raise BadRequest(f"{name}: {kind} from {lo} to {hi} is required, got {preview(raw)}",
                         code=code or f"bad_{name}")
    return int(digits)


def is_text(value: str) -> bool:
    """Valid Unicode text that can be sent on as UTF-8: no lone surrogates, no NUL."""
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # built once (json.loads with a
# keyword argument builds a decoder per call: a third of the time of a small document)


def load_json(raw: bytes | str | None, *, what: str, max_bytes: int, max_depth: int,
              code: str = "bad_json") -> Any:
    """Decode untrusted JSON within a size and nesting limit; strings must be valid text.

    Raises :class:`PayloadTooLarge` (413) over ``max_bytes`` and :class:`BadRequest` (400) with
    ``code`` for anything else wrong, each naming ``what``."""
    raw = raw or b""
    size = len(raw)
    if size > max_bytes:
        raise PayloadTooLarge(f"{what} is {size:,} bytes; at most {max_bytes:,} are accepted",
                              code="too_large")
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadRequest(f"{what} is not valid UTF-8 (byte {e.start})", code=code) from None
    else:
        text = raw
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise BadRequest(f"{what} is nested deeper than {max_depth} levels", code=code) from None
    except ValueError as e:
        raise BadRequest(f"{what} is not valid JSON: {str(e)[:120]}", code=code) from None
    if "\\u" in text or not is_text(text) or text.count("{") + text.count("[") > max_depth:
        check_tree(value, what=what, max_depth=max_depth, code=code)
    # else: every decoded string is made of the text's own characters (no \u escape), which are
    # valid, and no value nests deeper than the text has brackets: nothing to walk
    return value


def check_tree(value: Any, *, what: str, max_depth: int, code: str = "bad_json") -> None:
    """Nesting depth and text validity of a decoded JSON value (iterative: no recursion limit)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not is_text(item):
                raise BadRequest(f"{what} holds a string that is not valid text (a lone surrogate "
                                 "or NUL)", code=code)
        elif isinstance(item, (dict, list)):
            if depth > max_depth:
                raise BadRequest(f"{what} is nested deeper than {max_depth} levels", code=code)
            children = list(item.items()) if isinstance(item, dict) else [(None, v) for v in item]
            for key, child in children:
                if key is not None and not is_text(key):
                    raise BadRequest(f"{what} holds a key that is not valid text", code=code)
                stack.append((child, depth + 1))
