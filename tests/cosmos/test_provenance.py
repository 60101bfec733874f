"""cosmos/provenance.py: a record into a video or image and back, read with PyAV."""

import json
import os
import stat
from pathlib import Path

import av
import numpy as np
import pytest

from cosmos.provenance import (
    EXIF_TAG,
    KEY,
    SCHEMA,
    ProvenanceError,
    embed_provenance,
    provenance_json,
    read_provenance,
)
from tests.videos import write_test_image, write_test_video

RECORD = {
    "schema": SCHEMA,
    "run_id": "rs_abc",
    "prompt_text": 'a café at dusk, "wet" streets — 東京',
    "parameters": {"seed": 7, "controls": {"edge": 0.5}, "guidance": 7.0},
    "input_files": [{"modality": "color", "name": "color.mp4", "bytes": 10, "sha256": "0" * 64}],
    "started_at": None,
}


def packets(path: Path) -> list[tuple[int | None, int | None, bytes]]:
    with av.open(str(path)) as container:
        return [(p.pts, p.dts, bytes(p)) for p in container.demux(video=0) if p.size]


def write_png(path: Path) -> Path:
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = 32, 16, "rgb24"
        frame = av.VideoFrame.from_ndarray(np.full((16, 32, 3), 90, np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def test_it_embeds_a_record_in_a_video_without_reencoding_it(tmp_path):
    video = write_test_video(tmp_path / "output.mp4", frames=12)
    before = packets(video)

    embed_provenance(video, RECORD)

    with av.open(str(video)) as container:
        assert json.loads(container.metadata[KEY]) == RECORD
    assert packets(video) == before
    assert read_provenance(video) == RECORD
    assert leftovers(tmp_path) == []


def test_it_replaces_the_record_a_file_held(tmp_path):
    video = write_test_video(tmp_path / "output.mp4")
    image = write_test_image(tmp_path / "output.jpg")
    for path in (video, image):
        embed_provenance(path, RECORD)
        embed_provenance(path, {**RECORD, "run_id": "rs_new"})
        assert read_provenance(path)["run_id"] == "rs_new"


def test_it_keeps_the_files_mode_and_modification_time(tmp_path):
    made = 1_700_000_000_123_456_789
    files = [write_test_video(tmp_path / "output.mp4"), write_test_image(tmp_path / "output.jpg")]
    files.append(write_png(tmp_path / "output.png"))
    for path in files:
        path.chmod(0o640)
        os.utime(path, ns=(made, made))

    for path in files:
        size = path.stat().st_size
        embed_provenance(path, RECORD)
        assert path.stat().st_mtime_ns == made, path.name
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        assert path.stat().st_size > size  # what compares sizes sees the change


def test_it_embeds_a_record_in_a_jpeg_as_exif(tmp_path):
    image = write_test_image(tmp_path / "output.jpg", width=48, height=32)
    with av.open(str(image)) as container:
        pixels = next(container.decode(video=0)).to_ndarray()

    embed_provenance(image, RECORD)

    with av.open(str(image)) as container:
        frame = next(container.decode(video=0))
        assert json.loads(frame.metadata[EXIF_TAG]) == RECORD
        assert np.array_equal(frame.to_ndarray(), pixels)
    assert read_provenance(image) == RECORD


def test_it_embeds_a_record_in_a_png_as_text(tmp_path):
    image = write_png(tmp_path / "still.png")

    embed_provenance(image, RECORD)

    with av.open(str(image)) as container:
        assert json.loads(next(container.decode(video=0)).metadata[KEY]) == RECORD
    assert read_provenance(image) == RECORD


def test_it_reads_none_from_a_file_without_a_record(tmp_path):
    (tmp_path / "job.log").write_text("step 1/35\n")
    assert read_provenance(write_test_video(tmp_path / "plain.mp4")) is None
    assert read_provenance(write_test_image(tmp_path / "plain.jpg")) is None
    assert read_provenance(write_png(tmp_path / "plain.png")) is None
    assert read_provenance(tmp_path / "job.log") is None
    assert read_provenance(tmp_path / "missing.mp4") is None


def test_it_reads_none_from_another_programs_metadata(tmp_path):
    video, plain = tmp_path / "other.mp4", write_test_video(tmp_path / "plain.mp4")
    options = {"movflags": "use_metadata_tags"}
    with av.open(str(plain)) as source, av.open(str(video), "w", options=options) as out:
        out.metadata[KEY] = json.dumps({"schema": "someone-else@2"})
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(video=0):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    assert read_provenance(video) is None


def test_it_refuses_what_cannot_hold_a_record_and_leaves_it_as_it_was(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    text = tmp_path / "output.txt"
    text.write_text("an answer")
    image = write_test_image(tmp_path / "output.jpg")
    original = image.read_bytes()

    with pytest.raises(ProvenanceError, match="cannot remux"):
        embed_provenance(broken, RECORD)
    with pytest.raises(ProvenanceError, match="cannot hold"):
        embed_provenance(text, RECORD)
    with pytest.raises(ProvenanceError, match="larger than a JPEG's EXIF segment"):
        embed_provenance(image, {**RECORD, "prompt_text": "x" * 70_000})
    with pytest.raises(ProvenanceError, match="not a provenance record"):
        embed_provenance(image, {"run_id": "rs_abc"})

    assert broken.read_bytes() == b"not a video" and image.read_bytes() == original
    assert leftovers(tmp_path) == []


def test_it_leaves_a_jpegs_own_exif_alone(tmp_path):
    image = write_test_image(tmp_path / "photo.jpg")
    data = image.read_bytes()
    exif = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    image.write_bytes(data[:2] + b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif + data[2:])
    before = image.read_bytes()

    with pytest.raises(ProvenanceError, match="EXIF of its own"):
        embed_provenance(image, RECORD)
    assert image.read_bytes() == before


def test_it_stores_the_same_record_as_the_same_bytes():
    shuffled = dict(reversed(list(RECORD.items())))
    assert provenance_json(shuffled) == provenance_json(RECORD)
    assert provenance_json(RECORD).isascii()
