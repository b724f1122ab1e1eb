"""Deterministic sample CRM data for the demo, the tests and the benchmarks."""
