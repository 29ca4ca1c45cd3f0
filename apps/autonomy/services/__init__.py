"""Autonomy services: shadow predictions and their outcomes (shadow), the gate (gate), level
changes with their log (levels), and audits other apps ask for (audits)."""
