"""Every error riskwatch raises on purpose shares one root, so an embedding
program (or the CLI's last line of defence) can catch riskwatch's refusals
apart from programming errors (issue 15)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import riskwatch
from riskwatch.errors import RiskwatchError


def _modules():
    yield importlib.import_module("streams.app")
    for info in pkgutil.walk_packages(riskwatch.__path__, "riskwatch."):
        yield importlib.import_module(info.name)


def test_every_exception_class_riskwatch_defines_is_a_riskwatch_error():
    defined = {
        (module.__name__, name): cls
        for module in _modules()
        for name, cls in vars(module).items()
        if inspect.isclass(cls) and issubclass(cls, BaseException) and cls.__module__ == module.__name__
    }
    assert len(defined) > 10, "the walk found riskwatch's own exception classes"
    strays = sorted(f"{module}.{name}" for (module, name), cls in defined.items() if not issubclass(cls, RiskwatchError))
    assert strays == []
