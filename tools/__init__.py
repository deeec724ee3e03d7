"""Maintenance scripts run from a checkout (not installed): ``python -m tools.mutation``."""
