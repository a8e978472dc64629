"""Tokens and roles for the HTTP API.

Tokens come from configuration (`RISKWATCH_API_TOKENS="token:role,..."`),
never from the repository. The actor recorded in the audit trail is the
optional `X-Riskwatch-Actor` name plus a short fingerprint of the token, so
the log says who without ever holding a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re

ROLES = ("officer", "director", "operator", "readonly")
READERS = ROLES
WORKERS = ("officer", "director")
DIRECTORS = ("director",)
OPERATORS = ("operator",)

_ACTOR = re.compile(r"^[\w .@-]{1,64}$")


class TokenConfigError(ValueError):
    pass


def parse_tokens(spec: str | None) -> dict[str, str]:
    """'abc:officer,def:director' -> {'abc': 'officer', 'def': 'director'}."""
    tokens: dict[str, str] = {}
    for entry in (spec or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        token, sep, role = entry.rpartition(":")
        if not sep or not token:
            raise TokenConfigError("RISKWATCH_API_TOKENS: each entry is token:role")
        if role not in ROLES:
            raise TokenConfigError(f"RISKWATCH_API_TOKENS: unknown role {role!r} (roles: {', '.join(ROLES)})")
        tokens[token] = role
    return tokens


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:8]


def role_for(tokens: dict[str, str], presented: str | None) -> str | None:
    if not presented:
        return None
    for token, role in tokens.items():
        if hmac.compare_digest(token.encode(), presented.encode()):
            return role
    return None


def actor_name(token: str, header: str | None) -> str:
    if header and _ACTOR.match(header.strip()):
        return f"{header.strip()} (token {fingerprint(token)})"
    return f"token {fingerprint(token)}"
