"""Broker URL lists: one or more ``http(s)://`` base URLs of interchangeable brokers.

Several MiniMQ gateways over one cluster serve the same data, so a client may
name all of them and use whichever answers (:mod:`minimq.client._failover`).
A list is given either as a sequence of URLs or as one comma-separated string,
the form an environment variable can carry
(``BROKER_URL=http://a:5000,http://b:5000``).

The rules live here, free of any dependency, because both the client library
(which takes lists from code) and :mod:`minimq.environment` (which checks
flags and variables of every command, the broker's included, and so must not
load the client) apply them.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

EXAMPLE = "http://localhost:5000"


def parse_broker_urls(urls: str | Sequence[str]) -> tuple[str, ...]:
    """The broker URLs in ``urls``, in order, without trailing ``/`` or repeats.

    Raises ``ValueError`` naming the first entry that is not an ``http://`` or
    ``https://`` URL with a host (an empty entry, ``localhost:5000``, a query
    string), or when there is none at all.
    """
    entries = urls.split(",") if isinstance(urls, str) else list(urls)
    parsed: list[str] = []
    for entry in entries:
        if not isinstance(entry, str):
            raise ValueError(f"expected broker URLs as strings, not {entry!r}")
        # Each item of a sequence may itself be comma-separated (one per variable).
        for part in entry.split(","):
            url = check_broker_url(part.strip())
            if url not in parsed:
                parsed.append(url)
    if not parsed:
        raise ValueError(f"expected at least one broker URL such as {EXAMPLE}, not {urls!r}")
    return tuple(parsed)


def check_broker_url(text: str) -> str:
    """``text`` without its trailing ``/`` when it is one broker base URL, else ``ValueError``."""
    try:
        parts = urlsplit(text)
        # .port raises ValueError when the port is not a number up to 65535.
        valid = (
            parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and (parts.port is None or parts.port > 0)
            and not parts.query
            and not parts.fragment
        )
    except ValueError:
        valid = False
    if not valid:
        raise ValueError(
            f"expected an http:// or https:// URL such as {EXAMPLE}"
            f" (several: comma-separated), not {text!r}"
        )
    return text.rstrip("/")
