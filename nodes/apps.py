from django.apps import AppConfig


class NodesConfig(AppConfig):
    """GPU nodes, their jobs and transports."""

    verbose_name = "GPU nodes"

    name = "nodes"
