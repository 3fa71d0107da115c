"""Thin kopf handlers wiring api, render, signals and planner to the cluster (``main`` is the kopf entry)."""
