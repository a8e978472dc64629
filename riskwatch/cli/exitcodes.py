"""Exit statuses of the `riskwatch` commands, one meaning each, so a
supervisor (systemd, Kubernetes, a cron wrapper) can tell a problem with the
input from one with the store without parsing the message.
docs/operations.md, "Exit statuses", lists them for operators."""

from __future__ import annotations

EXIT_OK = 0
# Rule files with problems (`rules check`), or the API refused an action or
# its configuration (tokens, rules) is refused at start-up.
EXIT_REFUSED = 1
# Bad command line or settings (click's own usage errors), or an input file,
# rule directory or port that cannot be read or used; the terminal client
# cannot reach the API.
EXIT_UNREADABLE = 2
EXIT_UNREACHABLE = EXIT_UNREADABLE
# The workflow store (workflow.sqlite3) is damaged, read-only, cannot be
# opened, or its disk is full: the message names the file and what to do.
EXIT_STORE = 3
