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


MIN_TOKEN_CHARS = 16


def parse_tokens(spec: str | None) -> dict[str, str]:
    """'token-of-ann-0123456789:officer,...' -> {'token-of-ann-0123456789': 'officer', ...}.

    Raises TokenConfigError for an entry that is not token:role, an unknown
    role, a token shorter than MIN_TOKEN_CHARS (guessable) or one listed twice
    (two entries could not be told apart in the audit trail). Messages name
    the entry by position and role, never the token."""
    tokens: dict[str, str] = {}
    first_seen: dict[str, int] = {}
    for position, entry in enumerate((spec or "").split(","), start=1):
        entry = entry.strip()
        if not entry:
            continue
        token, sep, role = entry.rpartition(":")
        if not sep or not token:
            raise TokenConfigError("RISKWATCH_API_TOKENS: each entry is token:role")
        if role not in ROLES:
            raise TokenConfigError(f"RISKWATCH_API_TOKENS: unknown role {role!r} (roles: {', '.join(ROLES)})")
        if len(token) < MIN_TOKEN_CHARS:
            raise TokenConfigError(f"RISKWATCH_API_TOKENS: entry {position} (role {role}) has a token of {len(token)} "
                                   f"characters; tokens need at least {MIN_TOKEN_CHARS} (e.g. `openssl rand -hex 24`)")
        if token in first_seen:
            raise TokenConfigError(f"RISKWATCH_API_TOKENS: entry {position} (role {role}) repeats the token of entry "
                                   f"{first_seen[token]}; give each person or tool its own token")
        first_seen[token] = position
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
