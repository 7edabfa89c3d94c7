"""Deployment helpers (serving the flows without a work pool)."""
