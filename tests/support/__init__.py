"""Test support that is not a fake: data with a known answer (used by tests and benchmarks)."""
