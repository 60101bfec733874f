"""One profile per Cosmos model; `profile_for(name)` finds it by its model type or a common alias."""

from cosmos.profiles.base import JobFiles, JobItem, ModelProfile, ModelRequirements, VideoFacts
from cosmos.profiles.cosmos3 import Cosmos3NanoProfile, Cosmos3SuperProfile
from cosmos.profiles.predict2_5 import Predict25Profile
from cosmos.profiles.prompt_upsampler import PromptUpsamplerProfile
from cosmos.profiles.reason1 import Reason1Profile
from cosmos.profiles.reason2 import Reason2Profile
from cosmos.profiles.transfer1 import Transfer1Profile
from cosmos.profiles.transfer2_5 import Transfer25Profile
from cosmos.profiles.upscale4k import Upscale4kProfile

PROFILES: dict[str, ModelProfile] = {
    profile.name: profile
    for profile in (
        Cosmos3NanoProfile(),
        Cosmos3SuperProfile(),
        Transfer1Profile(),
        Transfer25Profile(),
        Predict25Profile(),
        Reason1Profile(),
        Reason2Profile(),
        Upscale4kProfile(),
        PromptUpsamplerProfile(),
    )
}

# What a prompt or run uses when nobody names a model (settings.COSMOS_DEFAULT_MODEL overrides it):
# Cosmos 3 superseded the 2.5 generation and Transfer1 on 2026-05-31 (reference/cosmos3.md).
DEFAULT_MODEL = "cosmos3_nano"

# Names people type for the models (the repositories' own spellings).
ALIASES = {
    "cosmos3": "cosmos3_nano",
    "cosmos3-nano": "cosmos3_nano",
    "nano": "cosmos3_nano",
    "cosmos3-super": "cosmos3_super",
    "super": "cosmos3_super",
    "transfer": "transfer1",
    "transfer2.5": "transfer2_5",
    "transfer25": "transfer2_5",
    "predict": "predict2_5",
    "predict2.5": "predict2_5",
    "predict25": "predict2_5",
    "reason": "reason1",
    "reason2": "reason2",
    "cosmos-reason2": "reason2",
    "cosmos_reason2": "reason2",
    "upscale": "upscale4k",
    "upscaler": "upscale4k",
    "4k": "upscale4k",
    "upsampler": "prompt_upsampler",
    "upsample": "prompt_upsampler",
    "enhance": "prompt_upsampler",
}


class UnknownModel(ValueError):
    pass


def profile_for(name: str) -> ModelProfile:
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    try:
        return PROFILES[key]
    except KeyError:
        raise UnknownModel(f"unknown model {name!r}; use one of {', '.join(PROFILES)}") from None


__all__ = [
    "ALIASES",
    "DEFAULT_MODEL",
    "PROFILES",
    "JobFiles",
    "JobItem",
    "ModelProfile",
    "ModelRequirements",
    "UnknownModel",
    "VideoFacts",
    "profile_for",
]
