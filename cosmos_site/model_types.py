"""The models a prompt, run or job can name, as Django choices: one per profile in cosmos.profiles.

Adding a profile to the registry adds the model everywhere (forms, admin filters, the API's
schema); a migration then records the new choice.
"""

from django.conf import settings
from django.db import models

from cosmos.profiles import PROFILES

ModelType = models.TextChoices(
    "ModelType", [(name.upper(), (name, profile.label)) for name, profile in PROFILES.items()]
)
ModelType.__doc__ = "Every model a run can use: the profiles of cosmos.profiles, in their order."


def default_model_type() -> str:
    """The model of a run or prompt that names none: settings.COSMOS_DEFAULT_MODEL (Cosmos3-Nano unless set).

    A callable, so model fields and forms read the setting when used, not when imported, and
    changing it needs no migration.
    """
    return settings.COSMOS_DEFAULT_MODEL
