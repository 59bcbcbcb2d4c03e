"""The test bench of hostile and broken inputs: their factories, the cases and their runner (docs/robustness.md)."""
