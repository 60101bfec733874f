"""A run's provenance record (minimal stand-in for the export branch; replaced at merge)."""

from typing import Any

from runs.models import Run


def run_provenance(run: Run) -> dict[str, Any]:
    """What a run was made from, as JSON-safe values: ids, texts, model, parameters and node."""
    return {
        "run_id": run.id,
        "prompt_id": run.prompt_id,
        "prompt": run.prompt.prompt_text,
        "negative_prompt": run.prompt.negative_prompt,
        "model_type": run.model_type,
        "parameters": run.execution_config.get("parameters", {}),
        "node": run.node.name if run.node_id else run.execution_config.get("node"),
    }
