from django.apps import AppConfig


class InputsConfig(AppConfig):
    """Input folders: preparation, uploads and registered input sets."""

    name = "inputs"
