"""One root exception; every error names what went wrong and where."""

from __future__ import annotations


class RiskwatchError(Exception):
    """Root of every error riskwatch raises on purpose."""


class RulesError(RiskwatchError):
    """Rule files that cannot be used. `problems` lists every one as `file: field.path: reason`."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class InputError(RiskwatchError):
    """An input file that cannot be read at all (missing, unreadable)."""


class MappingError(RiskwatchError):
    """A mapping file (riskwatch.ingest) that cannot be used. `problems` lists
    every one as `file: field.path: reason`."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
