"""System checks of the deployment (registered by runs.apps.RunsConfig.ready)."""

from django.core.checks import Error, register

from cosmos_site.data_folders import data_folders, fix_hint, folder_problem


@register()
def check_data_folders(app_configs, **kwargs) -> list[Error]:
    """A data folder this process cannot write into, or create, stops it before it starts work."""
    errors = []
    reported = []
    for folder in data_folders():
        if any(folder.path.is_relative_to(path) for path in reported):
            continue  # a folder inside one already reported has the same fix
        problem = folder_problem(folder.path)
        if problem:
            reported.append(folder.path)
            errors.append(
                Error(f"{problem} (needed for {folder.purpose}).", hint=fix_hint(folder), id="cosmos.E001")
            )
    return errors
