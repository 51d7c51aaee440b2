"""Request bodies and queries, bounded like every untrusted input: a POST body form-encoded (as
lain-cli sends it, ``files`` repeated) or JSON, both read the same; query values with repeated keys;
true/false flags. Every value is valid text of bounded length, every body of bounded size."""

from __future__ import annotations

from urllib.parse import parse_qs

from chalice.app import Request

from chalicelib.core.formats.inputs import KIB, bounded_int, is_text, load_json, preview
from chalicelib.errors import BadRequest, PayloadTooLarge

MAX_BODY = 64 * KIB  # lain-cli's largest body is a list of backup names
MAX_FIELDS = 1000
MAX_VALUE = 4096
MAX_INSTANCE = 100_000


class Form:
    """A POST body, form-encoded (lain-cli, ``files`` repeated) or JSON; both read the same.

    Bounded like every untrusted input: at most ``MAX_BODY`` bytes, valid UTF-8, a JSON object of
    strings, numbers or lists of them (nothing nested deeper)."""

    def __init__(self, req: Request, declared: tuple[str, ...] = ()) -> None:
        self.values: dict[str, list[str]] = {}
        self.declared = declared
        content_type = (req.headers.get("content-type") or "").lower()
        raw = req.raw_body or b""
        if isinstance(raw, str):
            raw = raw.encode()
        if len(raw) > MAX_BODY:
            raise PayloadTooLarge(f"request body is {len(raw):,} bytes; at most {MAX_BODY:,} "
                                  "are accepted", code="too_large")
        if not raw.strip():
            return
        if "application/x-www-form-urlencoded" in content_type:
            try:
                values = parse_qs(raw.decode("utf-8"), keep_blank_values=True, errors="strict",
                                  max_num_fields=MAX_FIELDS)
            except UnicodeDecodeError:
                raise BadRequest("request body is not valid UTF-8", code="bad_body") from None
            except ValueError:
                raise BadRequest(f"request body has more than {MAX_FIELDS} fields",
                                 code="bad_body") from None
            for key, items in values.items():
                self.values[key] = [_text(v, key) for v in items]
            return
        data = load_json(raw, what="request body", max_bytes=MAX_BODY, max_depth=2, code="bad_body")
        if not isinstance(data, dict):
            raise BadRequest("request body must be a JSON object", code="bad_body")
        for key, value in data.items():
            items = value if isinstance(value, list) else [value]
            if any(isinstance(v, (dict, list)) for v in items):
                raise BadRequest(f"{key}: must be a string, a number or a list of them",
                                 code="bad_body")
            self.values[key] = [_text(str(v), key) for v in items if v is not None]

    def get(self, name: str) -> str:
        return (self._declared(name) or [""])[0].strip()

    def getlist(self, name: str) -> list[str]:
        return [v for v in self._declared(name) if v != ""]

    def _declared(self, name: str) -> list[str]:
        if name not in self.declared:
            raise AssertionError(f"body field {name!r} is not declared on the route")
        return self.values.get(name, [])

    def get_int(self, name: str) -> int:
        return bounded_int(self.get(name), name, 0, MAX_INSTANCE, code="bad_instance",
                           kind="an instance number")


def _text(value: str, name: str) -> str:
    """A body or query value: valid text, no NUL, at most ``MAX_VALUE`` characters."""
    if len(value) > MAX_VALUE or not is_text(value):
        raise BadRequest(f"{name}: {preview(value)} is not a value this API accepts (valid text "
                         f"of at most {MAX_VALUE} characters)", code="bad_value")
    return value


def flag(raw: str, name: str, default: bool) -> bool:
    """A true/false query flag; anything else is a 400."""
    if not raw:
        return default
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise BadRequest(f"{name}: true or false, got {preview(raw)}", code=f"bad_{name}")


def query_lists(req: Request) -> dict[str, list[str]]:
    """All query values, repeated keys included (``?volume=a&volume=b``), each checked as text."""
    multi = getattr(req, "query_params", None)
    if multi is None:
        return {}
    return {_text(k, "query key"): [_text(v, k) for v in multi.getlist(k)] for k in multi}
