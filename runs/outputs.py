"""What a run's folder holds once its outputs are downloaded, as the JSON stored in Run.outputs."""

import re
from pathlib import Path

# Control videos a job leaves: Transfer1's `<hint>_input_control_<rank>.mp4`, Transfer2.5's
# `<name>_control_<hint>.mp4` (renamed output_control_<hint>.mp4 in the run's folder).
CONTROL_VIDEO = re.compile(r"^(?:(?P<t1>[a-z]+)_input_control_\d+|output_control_(?P<t25>[a-z]+))\.mp4$")


def outputs_json(folder: Path, names: list[str], video_info) -> dict:
    outputs: dict = {"dir": str(folder), "files": sorted(names)}
    named = {
        "video": "output.mp4",
        "prompt_file": "output.txt",
        "answer_file": "answer.txt",
        "thumbnail": "thumbnail.jpg",
        "log": "job.log",
        "spec": "spec.json",
    }
    for key, name in named.items():
        if (folder / name).exists():
            outputs[key] = str(folder / name)
    controls = {
        match["t1"] or match["t25"]: str(folder / name)
        for name in names
        if (match := CONTROL_VIDEO.match(name))
    }
    if controls:
        outputs["controls"] = controls
    if video_info:
        outputs["video_info"] = video_info.to_dict()
    return outputs
