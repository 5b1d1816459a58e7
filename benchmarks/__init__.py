"""Dev-set evaluation and speed benchmarks; run them from the repository root with `python -m`."""
