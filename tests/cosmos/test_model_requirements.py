"""The node requirements of the profiles this part fills (Cosmos 3 Nano and Super, Transfer1, the 4K upscaler)."""

import pytest

from cosmos.profiles import profile_for

FILLED = ("cosmos3_nano", "cosmos3_super", "transfer1", "upscale4k")


@pytest.mark.parametrize("model", FILLED)
def test_it_names_only_boolean_offload_parameters_the_model_takes(model):
    profile = profile_for(model)
    requirements = profile.requirements
    booleans = {param.name for param in profile.parameters if param.kind is bool}
    assert requirements.offload_parameters
    assert set(requirements.offload_parameters) <= booleans


@pytest.mark.parametrize("model", FILLED)
def test_it_needs_less_memory_with_offloading_and_downloads_what_is_gated(model):
    requirements = profile_for(model).requirements
    assert 0 < requirements.offloaded_gpu_memory_gb <= requirements.gpu_memory_gb
    assert requirements.checkpoint_gb > 0
    assert set(requirements.gated_repos) <= set(requirements.download_repos)


def test_it_keeps_the_prompt_upsampler_out_of_the_upscalers_downloads():
    repos = profile_for("upscale4k").requirements.download_repos
    assert "nvidia/Cosmos-Transfer1-7B" in repos
    assert not any("UpsamplePrompt" in repo for repo in repos)
    assert "offload_prompt_upsampler" not in profile_for("upscale4k").requirements.offload_parameters
