"""The console: the screen risk officers and directors work alerts in (DOMAIN §10).

Server-rendered pages (Jinja2) over the same alert desk, lock and audit
trail as the HTTP API, served by `riskwatch api` and `riskwatch run` at
`/console/` (`/` leads there). htmx and its server-sent-events extension,
installed from the npm registry by scripts/bootstrap.sh and served from
`/console/static/vendor/`, refresh the inbox and an alert's page when the
desk changes; every page and form also works without JavaScript.

Sign-in is by API token into an HttpOnly, SameSite=Strict session cookie
(`riskwatch.console.sessions`); every form carries a CSRF token and the
server checks the session's role on every action, with the API's role
sets (`riskwatch.api.auth`). Pages show only the actions the role may take.
"""

from __future__ import annotations

from riskwatch.console.routes import ConsoleBackend, is_console_path, mount_console

__all__ = ["ConsoleBackend", "is_console_path", "mount_console"]
