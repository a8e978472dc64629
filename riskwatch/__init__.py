"""riskwatch: event-driven sales-risk early warning."""

__version__ = "0.1.0"
