"""The models a prompt, run or job can name, as Django choices: one per profile in cosmos.profiles.

Adding a profile to the registry adds the model everywhere (forms, admin filters, the API's
schema); a migration then records the new choice.
"""

from django.db import models

from cosmos.profiles import DEFAULT_MODEL, PROFILES

ModelType = models.TextChoices(
    "ModelType", [(name.upper(), (name, profile.label)) for name, profile in PROFILES.items()]
)
ModelType.__doc__ = "Every model a run can use: the profiles of cosmos.profiles, in their order."

DEFAULT_MODEL_TYPE = ModelType(DEFAULT_MODEL)
