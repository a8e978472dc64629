"""The `riskwatch` console script: parses, wires, prints; no business logic.

Each command group lives in its own module and registers on `main`.
"""

from __future__ import annotations

import importlib

import click


# The Kafka worker runs under faust, which installs its own logging.
_OWN_LOGGING = frozenset({"worker"})


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="riskwatch")
@click.pass_context
def main(context: click.Context) -> None:
    """Sales-risk early warning: rule matrix, tiered alerts, playbooks."""
    from riskwatch.logconfig import configure_logging
    from riskwatch.settings import SettingsError, load_settings

    # Settings are checked here, before any command starts, so a bad value
    # (RISKWATCH_LOG_LEVEL=verbose) is one line naming it, for every command.
    try:
        settings = load_settings()
    except SettingsError as error:
        raise click.UsageError(str(error)) from None
    if context.invoked_subcommand not in _OWN_LOGGING:
        configure_logging(settings.log_level)


# Modules whose import registers their commands on `main`. A command module
# that fails to import must not take the whole CLI down with it.
_COMMAND_MODULES = (
    "riskwatch.cli.core",      # classify, rules check, replay, simulate, run
    "riskwatch.cli.worker",    # worker, alerts tail (Kafka)
    "riskwatch.cli.api",       # api, alerts list|show|ack|..., plan trigger
    "riskwatch.cli.ingest",    # mapping check, import
)

for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as exc:  # module not written yet in this checkout
        if exc.name != _name:
            raise
