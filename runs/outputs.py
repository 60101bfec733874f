"""What a run's folder holds once its outputs are downloaded, as the JSON stored in Run.outputs.

A run's result is a video (output.mp4, with video_info) or an image (output.jpg, with image_info);
either way thumbnail.jpg shows it in lists. Transfer runs also leave one control video per hint.
"""

import re
from pathlib import Path

from cosmos.media import ImageInfo, VideoInfo

# Control videos a job leaves: Transfer1's `<hint>_input_control_<rank>.mp4`, Transfer2.5's and
# Cosmos 3's `<name>_control_<hint>.mp4` / `control_<hint>.mp4` (renamed output_control_<hint>.mp4
# in the run's folder).
CONTROL_VIDEO = re.compile(r"^(?:(?P<t1>[a-z]+)_input_control_\d+|output_control_(?P<t25>[a-z]+))\.mp4$")

NAMED_FILES = {
    "video": "output.mp4",
    "image": "output.jpg",
    "prompt_file": "output.txt",
    "answer_file": "answer.txt",
    "thumbnail": "thumbnail.jpg",
    "log": "job.log",
    "spec": "spec.json",
    "sample_args": "sample_args.json",
    "sample_outputs": "sample_outputs.json",
}


def outputs_json(
    folder: Path,
    names: list[str],
    *,
    video_info: VideoInfo | None = None,
    image_info: ImageInfo | None = None,
) -> dict:
    outputs: dict = {"dir": str(folder), "files": sorted(names)}
    for key, name in NAMED_FILES.items():
        if (folder / name).exists():
            outputs[key] = str(folder / name)
    controls = {
        match["t1"] or match["t25"]: str(folder / name)
        for name in sorted(names)
        if (match := CONTROL_VIDEO.match(name))
    }
    if controls:
        outputs["controls"] = controls
    if video_info:
        outputs["video_info"] = video_info.to_dict()
    if image_info:
        outputs["image_info"] = image_info.to_dict()
    return outputs
