"""Rule files: schema, strict loading, the tier matrix."""

from riskwatch.errors import RulesError
from riskwatch.rules.loader import CompiledIndicator, RuleSet, check_rules, load_rules

__all__ = ["CompiledIndicator", "RuleSet", "RulesError", "check_rules", "load_rules"]
