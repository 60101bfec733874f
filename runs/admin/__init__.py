"""The admin of everything that involves runs: runs, progress, API keys, sweeps, and prompt curation (which
queues runs); node and job pages here gain their runs (the nodes app cannot know them)."""

from runs.admin import nodes, prompts, runs, sweeps  # noqa: F401 (registers the model admins)
