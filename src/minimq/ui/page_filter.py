"""Ruling out a whole fetched page from its JSON bytes, before any record is built.

A search over a million records spent most of its time building records that
could not match.  A *needle* is a byte string that the JSON text of every
matching record must contain; a page (the broker's fetch answer, verbatim,
:class:`~minimq.client.RawFetchPage`) that lacks a needle holds no match and
is counted as scanned without being decoded.  A page that has every needle is
decoded and each record checked by the exact predicate, so the filter can
only save work, never change a result.  A needle is only taken where "must
contain" really holds:

- a key, exactly: its JSON string (``"dev-7"``); as a prefix: the string
  without its closing quote (``"dev-``);
- a field condition ``value.a.b = "text"``: the JSON string of the expected
  text; with any other expected value (a number, ``true``): the field name's
  JSON string (``"b"``), as a number has many spellings (``1``, ``1.0``, ``1e0``);
- a text search (case-insensitive over key, headers and the value as
  compact JSON): the needle lowered, when it is only ASCII letters, ``_``,
  ``-`` and spaces and not only ``e``/``-`` (then it cannot lie within a
  re-written number such as ``1e-07``, nor span JSON punctuation); only for
  pages that are all ASCII, where lowering bytes is case-folding.

A JSON string holds its characters literally, except for escapes; the short
ones (``\\"``, ``\\n``...) have one spelling, which the needle has too.  So a
page with a ``\\u`` or ``\\/`` escape anywhere, or with any ``*_b64`` field
(bytes whose text is not in the page), is always decoded, as is every page
when a needle itself would need a ``\\u`` escape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

# Escapes with more than one spelling, and the value rule's base64 fields.
_UNSAFE_IN_PAGE = (b"\\u", b"\\/", b'_b64"')
_TEXT_NEEDLE = re.compile(r"[a-z_ -]*[a-df-z_ ][a-z_ -]*")


def _json_string(text: str) -> bytes | None:
    """``text`` as the broker writes a JSON string; None when that needs a ``\\u`` escape."""
    encoded = orjson.dumps(text)
    return None if b"\\u" in encoded else encoded


@dataclass(frozen=True)
class PageFilter:
    """The needles of one query (see the module docstring); with none, no page is ruled out."""

    needles: tuple[bytes, ...] = ()
    text_needle: bytes | None = None

    @classmethod
    def build(
        cls,
        *,
        key: str = "",
        key_prefix: bool = False,
        field_name: str | None = None,
        field_value: object = None,
        text: str = "",
    ) -> PageFilter:
        needles: list[bytes | None] = []
        if key:
            encoded = _json_string(key)
            needles.append(encoded[:-1] if encoded is not None and key_prefix else encoded)
        if field_name is not None:
            needles.append(
                _json_string(field_value)
                if isinstance(field_value, str)
                else _json_string(field_name)
            )
        lowered = text.casefold()
        text_needle = (
            lowered.encode() if lowered.isascii() and _TEXT_NEEDLE.fullmatch(lowered) else None
        )
        return cls(tuple(n for n in needles if n is not None), text_needle)

    @property
    def active(self) -> bool:
        return bool(self.needles) or self.text_needle is not None

    def rules_out(self, page: bytes) -> bool:
        """True when no record of ``page`` (a fetch answer's JSON) can match."""
        if not self.active or any(unsafe in page for unsafe in _UNSAFE_IN_PAGE):
            return False
        if any(needle not in page for needle in self.needles):
            return True
        if self.text_needle is not None and page.isascii():
            return self.text_needle not in page.lower()
        return False
