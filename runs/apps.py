from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        from cosmos_site import checks  # noqa: F401  registers the deployment's system checks
