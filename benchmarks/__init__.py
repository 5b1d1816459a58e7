"""Dev-set evaluation and speed benchmarks; run them from the repository root with `python -m`."""

import json
from pathlib import Path


def save_results(results_dir, name, markdown, summary):
    """Write results_dir/<name>.md (the table people read) and <name>.json (the same figures for tools)."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"{name}.md").write_text(markdown)
    (results_dir / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
