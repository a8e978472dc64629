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
from dataclasses import dataclass
from riskwatch.errors import RiskwatchError

ROLES = ("officer", "director", "operator", "readonly")
READERS = ROLES
WORKERS = ("officer", "director")
DIRECTORS = ("director",)
OPERATORS = ("operator",)

_ACTOR = re.compile(r"^[\w .@-]{1,64}$")


class TokenConfigError(RiskwatchError, ValueError):
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


def actor_name(token: str, header: str | None) -> str:
    if header and _ACTOR.match(header.strip()):
        return f"{header.strip()} (token {fingerprint(token)})"
    return f"token {fingerprint(token)}"


# --------------------------------------------------------------------------- grants

@dataclass(frozen=True)
class TokenGrant:
    """What one token may do and whom it names. `role` one of ROLES;
    `regions` the regions whose alerts (and their plans and reviews) it may
    see and act on, None for all; `person` and `team` the person the token
    belongs to (the audit trail's actor, the inbox's "mine" and "my team's")."""

    role: str
    regions: frozenset[str] | None = None
    person: str | None = None
    team: str | None = None


class Grants:
    """Tokens → grants, from RISKWATCH_API_TOKENS (role only) and the tokens
    file (RISKWATCH_API_TOKENS_FILE: people, teams, region limits; see
    `load_tokens_file`). Comparisons are constant-time; a file entry may hold
    the token's SHA-256 instead of the token, so the file holds no secret."""

    def __init__(self, plain: dict[str, TokenGrant], hashed: dict[str, TokenGrant] | None = None):
        self._plain = dict(plain)
        self._hashed = dict(hashed or {})

    @classmethod
    def from_roles(cls, tokens: dict[str, str]) -> "Grants":
        return cls({token: TokenGrant(role) for token, role in tokens.items()})

    def __bool__(self) -> bool:
        return bool(self._plain or self._hashed)

    def grant_for(self, presented: str | None) -> TokenGrant | None:
        if not presented:
            return None
        found = None
        for token, grant in self._plain.items():
            if hmac.compare_digest(token.encode(), presented.encode()):
                found = grant
        if found is None and self._hashed:
            digest = hashlib.sha256(presented.encode()).hexdigest()
            for hashed, grant in self._hashed.items():
                if hmac.compare_digest(hashed, digest):
                    found = grant
        return found

    def people(self) -> dict[str, str | None]:
        """{person: team} of every grant that names a person (for reassigning)."""
        return {g.person: g.team for g in (*self._plain.values(), *self._hashed.values()) if g.person}

    def team_of(self, team: str | None) -> frozenset[str]:
        if not team:
            return frozenset()
        return frozenset(person for person, their_team in self.people().items() if their_team == team)


_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def load_tokens_file(path, environment_tokens: dict[str, str] | None = None) -> Grants:
    """Grants from a YAML tokens file plus RISKWATCH_API_TOKENS's role-only tokens.

        tokens:
          - token_sha256: 9f86d0...   # or `token: ...` (at least 16 characters)
            role: director
            person: Li Wei            # the audit trail's actor; "assign to me"
            team: east-sales          # "my team's" view
            regions: [east]           # only these regions' alerts, plans and reviews
        roles:                        # optional: a limit for every token of a role
          readonly: {regions: [east, north]}

    Raises TokenConfigError naming the file, the entry and the field for
    anything else (unknown key, unknown role, short token, repeated token,
    empty region list)."""
    import yaml

    where = str(path)
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as error:
        raise TokenConfigError(f"{where}: cannot read: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise TokenConfigError(f"{where}: not YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(data, dict) or set(data) - {"tokens", "roles"}:
        raise TokenConfigError(f"{where}: expected a mapping with `tokens` (and optionally `roles`)")
    role_limits: dict[str, frozenset[str]] = {}
    for role, limit in (data.get("roles") or {}).items():
        if role not in ROLES:
            raise TokenConfigError(f"{where}: roles.{role}: unknown role (roles: {', '.join(ROLES)})")
        if not isinstance(limit, dict) or set(limit) - {"regions"}:
            raise TokenConfigError(f"{where}: roles.{role}: expected {{regions: [...]}}")
        role_limits[role] = _regions(where, f"roles.{role}.regions", limit.get("regions"))
    plain: dict[str, TokenGrant] = {}
    hashed: dict[str, TokenGrant] = {}
    for token, role in (environment_tokens or {}).items():
        plain[token] = TokenGrant(role, role_limits.get(role))
    entries = data.get("tokens") or []
    if not isinstance(entries, list):
        raise TokenConfigError(f"{where}: tokens: expected a list of entries")
    allowed = {"token", "token_sha256", "role", "person", "team", "regions"}
    for number, entry in enumerate(entries):
        at = f"{where}: tokens[{number}]"
        if not isinstance(entry, dict):
            raise TokenConfigError(f"{at}: expected a mapping")
        unknown = set(entry) - allowed
        if unknown:
            raise TokenConfigError(f"{at}.{sorted(unknown)[0]}: unknown field (fields: {', '.join(sorted(allowed))})")
        role = entry.get("role")
        if role not in ROLES:
            raise TokenConfigError(f"{at}.role: {role!r} is not a role (roles: {', '.join(ROLES)})")
        person = _name(at, "person", entry.get("person"))
        team = _name(at, "team", entry.get("team"))
        regions = _regions(at, "regions", entry["regions"]) if "regions" in entry else role_limits.get(role)
        grant = TokenGrant(role, regions, person, team)
        if ("token" in entry) == ("token_sha256" in entry):
            raise TokenConfigError(f"{at}: give exactly one of `token` and `token_sha256`")
        if "token" in entry:
            token = str(entry["token"])
            if len(token) < MIN_TOKEN_CHARS:
                raise TokenConfigError(f"{at}.token: {len(token)} characters; tokens need at least {MIN_TOKEN_CHARS}")
            if token in plain:
                raise TokenConfigError(f"{at}.token: repeats another entry's token; give each person their own")
            plain[token] = grant
        else:
            digest = str(entry["token_sha256"]).lower()
            if not _HEX64.match(digest):
                raise TokenConfigError(f"{at}.token_sha256: expected 64 hexadecimal digits (sha256sum of the token)")
            if digest in hashed:
                raise TokenConfigError(f"{at}.token_sha256: repeats another entry's token")
            hashed[digest] = grant
    return Grants(plain, hashed)


def _regions(where: str, field: str, value) -> frozenset[str]:
    if not isinstance(value, list) or not value or not all(isinstance(r, str) and r.strip() for r in value):
        raise TokenConfigError(f"{where}: {field}: expected a non-empty list of region names")
    return frozenset(r.strip() for r in value)


def _name(where: str, field: str, value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _ACTOR.match(value.strip()):
        raise TokenConfigError(f"{where}.{field}: 1 to 64 letters, digits, spaces or . @ - _")
    return value.strip()
