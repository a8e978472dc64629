"""Command-line flags shared by several commands, and the loading of what
every command reads alike (settings, rules).

`alertmanager_delivery_options` gives `run`, `replay` and `worker` one flag
per `RISKWATCH_ALERTMANAGER_*` delivery limit (riskwatch.sinks.delivery),
so the three spell, document and check them alike. A flag that is given
wins over its environment variable (`Settings.with_overrides`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, NoReturn, TypeVar

import click

from riskwatch.cli.exitcodes import EXIT_UNREADABLE
from riskwatch.errors import RulesError
from riskwatch.rules import load_rules
from riskwatch.rules.loader import RuleSet
from riskwatch.settings import ENVIRONMENT_FIELDS, Settings, SettingsError, load_settings

F = TypeVar("F", bound=Callable)


def settings_or_usage(**overrides: object) -> Settings:
    """The settings of the RISKWATCH_ environment with the flags given
    (`overrides`, None for a flag not given) applied. A bad value, of a
    variable or a flag, is a usage error naming it (exit 2)."""
    try:
        return load_settings().with_overrides(**overrides)
    except SettingsError as error:
        raise click.UsageError(str(error)) from None


def rules_or_exit(directory: Path) -> RuleSet:
    """The rules of `directory`, or every problem (`file: field: reason`) on
    stderr and exit EXIT_UNREADABLE."""
    try:
        return load_rules(directory)
    except RulesError as error:
        unusable(error.problems, f"rules in {directory}")


def unusable(problems: list[str], what: str) -> NoReturn:
    """Every problem of a file a command needs (`file: field: reason`) on
    stderr, then `<what> cannot be used (N problem(s))`; exit EXIT_UNREADABLE."""
    for problem in problems:
        click.echo(problem, err=True)
    click.echo(f"{what} cannot be used ({len(problems)} problem(s))", err=True)
    sys.exit(EXIT_UNREADABLE)


_VARIABLE_OF = {attr: name for name, attr in ENVIRONMENT_FIELDS.items()}

# (flag, Settings field, click type, what it limits). The flag drops the
# variable's `_SECONDS` suffix, as --lateness and --future-tolerance do.
# Every limit must be greater than 0 (DeliveryPolicy refuses anything else);
# the click types refuse it at parse time, naming the flag.
_COUNT = click.IntRange(min=1)
_SECONDS = click.FloatRange(min=0, min_open=True)
DELIVERY_FLAGS: tuple[tuple[str, str, click.ParamType, str], ...] = (
    ("--alertmanager-queue-size", "alertmanager_queue_size", _COUNT,
     "Alert label sets waiting for Alertmanager at most; beyond, the oldest is dropped"),
    ("--alertmanager-batch-size", "alertmanager_batch_size", _COUNT, "Alerts per post to Alertmanager at most"),
    ("--alertmanager-timeout", "alertmanager_timeout_seconds", _SECONDS, "Seconds one post to Alertmanager may take"),
    ("--alertmanager-max-age", "alertmanager_max_age_seconds", _SECONDS,
     "Seconds a queued notification is kept before it is dropped"),
    ("--alertmanager-backoff-initial", "alertmanager_backoff_initial_seconds", _SECONDS,
     "Seconds to wait after the first failed post (doubled per failure, with jitter)"),
    ("--alertmanager-backoff-max", "alertmanager_backoff_max_seconds", _SECONDS,
     "Longest wait between posts while Alertmanager fails, in seconds"),
    ("--alertmanager-breaker-failures", "alertmanager_breaker_failures", _COUNT,
     "Failed posts in a row that open the circuit breaker"),
    ("--alertmanager-drain", "alertmanager_drain_seconds", _SECONDS,
     "Seconds given at shutdown to deliver what is queued"),
)


def alertmanager_delivery_options(function: F) -> F:
    """Add the eight Alertmanager delivery flags to a click command.

    Each flag passes its value as the keyword argument named after its
    `Settings` field (e.g. `alertmanager_timeout_seconds`), None when not
    given, so the command hands them to `Settings.with_overrides` unchanged.
    Help names the environment variable and the default (from `Settings`);
    a value that is not above 0 is a usage error naming the flag (exit 2).
    """
    # click lists options in decorator order: apply the last one first.
    for flag, attr, kind, what in reversed(DELIVERY_FLAGS):
        default = getattr(Settings, attr)
        function = click.option(flag, attr, type=kind, default=None,
                                help=f"{what}; default {default:g} ({_VARIABLE_OF[attr]}).")(function)
    return function

