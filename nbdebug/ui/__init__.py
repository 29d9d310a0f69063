"""Renderers of a Report: text here; widgets and HTML arrive with the dashboard."""
