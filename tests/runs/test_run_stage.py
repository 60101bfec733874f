"""Staging a queued run's inputs ahead of its launch (services.queue.run_stage), for every model.

Staging once read Transfer1's shape into every run (the input video and a video per control
weight): Reason's runs raised KeyError('controls') in the worker, and the other models staged
files their launch never asks for while the ones it does were sent at launch time.
"""

from pathlib import Path

import pytest

from cosmos.media import sha256_file
from cosmos.profiles import PROFILES, profile_for
from nodes.remote import transport_for
from runs.run_inputs import run_input_files
from runs.services import run_create, run_plan
from runs.services.queue import run_stage

# model → (what its run is asked for, the modalities its launch stages, the suffix of each)
CASES = {
    "transfer1": ({}, {"color": ".mp4", "depth": ".mp4", "seg": ".mp4"}),
    "transfer2_5": ({}, {"color": ".mp4", "depth": ".mp4", "seg": ".mp4"}),
    "predict2_5/text2world": ({"parameters": {"inference_type": "text2world"}, "input_dir": None}, {}),
    "predict2_5/image2world": ({"parameters": {"inference_type": "image2world"}}, {"color": ".jpg"}),
    "reason1": ({"prompt_text": "What moves?"}, {"color": ".mp4"}),
    "reason2": ({"prompt_text": "What moves?"}, {"color": ".mp4"}),
    "upscale4k": ({"source": "color.mp4", "input_dir": None}, {"color": ".mp4"}),
    "prompt_upsampler": ({}, {"color": ".mp4"}),
    "cosmos3_nano": ({}, {"color": ".mp4", "depth": ".mp4", "seg": ".mp4"}),
    "cosmos3_nano/text2image": ({"parameters": {"model_mode": "text2image"}, "input_dir": None}, {}),
    "cosmos3_super/image2video": ({"parameters": {"model_mode": "image2video"}}, {"image": ".jpg"}),
}


def test_it_has_a_case_for_every_model():
    assert {case.split("/")[0] for case in CASES} == set(PROFILES)


def cached_digests(node) -> set[str]:
    cache = Path(transport_for(node).cache_path("x")).parent
    return {path.name for path in cache.iterdir()} if cache.exists() else set()


@pytest.mark.parametrize("case", CASES)
def test_it_stages_what_the_launch_of_each_model_reads(case, fast_sim, render_dir):
    request, expected = CASES[case]
    request = {"prompt_text": "a harbour at dawn", "input_dir": render_dir, **request}
    if "source" in request:
        request["source"] = str(render_dir / request["source"])
    run = run_create(plan=run_plan(model=case.split("/")[0], node=fast_sim.name, **request))

    sent = run_stage(run=run)

    run.refresh_from_db()
    files = run_input_files(run, profile_for(run.model_type)).files
    assert {modality: path.suffix for modality, path in files.items()} == expected
    assert cached_digests(fast_sim) == {sha256_file(path) for path in files.values()}
    assert sent == sum(path.stat().st_size for path in files.values())
    assert run.metadata["staged"] is True
    assert run_stage(run=run) == 0  # staged once
