"""Reading one header from an ASGI scope without building a mapping of all of them.

Each middleware used to turn the whole header list into a dict to look up one name, on
every request; scanning the short list for that name is a fraction of the cost. Names in
an ASGI scope are lower-case bytes; as with a dict, the last of repeated headers wins."""

from __future__ import annotations

from starlette.types import Scope


def header(scope: Scope, name: bytes) -> bytes | None:
    found = None
    for key, value in scope.get("headers") or ():
        if key == name:
            found = value
    return found
