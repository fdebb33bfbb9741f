"""Simulated devices: one module per device kind, plus the fleet runner."""
