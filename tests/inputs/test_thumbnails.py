"""Stills of input folders (inputs.thumbnails): the folder's own, else one made once and cached."""

import os
from unittest import mock

import av
import pytest

from inputs import thumbnails
from inputs.folders import InputError
from inputs.thumbnails import input_thumbnail, thumbnail_cache_dir
from tests.videos import write_test_image, write_test_video


def size_of(jpeg) -> tuple[int, int]:
    with av.open(str(jpeg)) as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


def test_it_makes_a_still_of_the_input_video_once(render_dir):
    with mock.patch.object(thumbnails, "write_thumbnail", wraps=thumbnails.write_thumbnail) as write:
        first = input_thumbnail(render_dir)
        again = input_thumbnail(render_dir)

    assert first == again and write.call_count == 1
    assert first.parent == thumbnail_cache_dir() and size_of(first) == (320, 180)
    assert len(list(render_dir.iterdir())) == 3  # nothing written into the input folder


def test_it_makes_a_new_still_when_the_video_changes(render_dir):
    first = input_thumbnail(render_dir)
    write_test_video(render_dir / "color.mp4", frames=9, width=64, height=64)
    os.utime(render_dir / "color.mp4", ns=(1, 1))

    second = input_thumbnail(render_dir)

    assert second != first and size_of(second) == (320, 320)


def test_it_uses_the_folders_own_thumbnail(render_dir):
    (render_dir / "thumbnail.jpg").write_bytes(b"\xff\xd8\xff prepared")

    assert input_thumbnail(render_dir) == render_dir / "thumbnail.jpg"
    assert not thumbnail_cache_dir().exists()


def test_it_shows_an_input_image(tmp_path):
    write_test_image(tmp_path / "image.png", width=96, height=64)

    assert size_of(input_thumbnail(tmp_path)) == (320, 214)


@pytest.mark.parametrize("content", [None, b"not a video"])
def test_it_says_when_there_is_nothing_to_show(tmp_path, content):
    if content is not None:
        (tmp_path / "color.mp4").write_bytes(content)

    with pytest.raises(InputError):
        input_thumbnail(tmp_path)
