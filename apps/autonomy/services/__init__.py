"""Autonomy services: shadow predictions and their outcomes (shadow), the gate (gate), and level
changes with their log (levels)."""
