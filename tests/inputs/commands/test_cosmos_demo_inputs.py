from io import StringIO

import av
import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from cosmos.humanize import byte_size
from cosmos.media import probe_video
from inputs.demo import SEGMENT_COLORS
from inputs.models import InputSet

# The command registers what it writes as an input set.
pytestmark = pytest.mark.django_db

SMALL = ["--frames", "13", "--width", "128", "--height", "72"]
NAMES = ["color.mp4", "depth.mp4", "segmentation.mp4"]


def run(*args: str) -> str:
    out = StringIO()
    call_command("cosmos_demo_inputs", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def frames_of(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def class_mask(segmentation: np.ndarray, name: str) -> np.ndarray:
    # H.264 blurs the class colours a little at edges, hence the tolerance.
    distance = np.abs(segmentation.astype(int) - SEGMENT_COLORS[name]).sum(axis=2)
    return distance < 60


def centroid(mask: np.ndarray) -> np.ndarray:
    rows, columns = np.nonzero(mask)
    return np.array([rows.mean(), columns.mean()])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


@pytest.fixture
def demo(tmp_path):
    """A small demo set, written once per test through the command."""
    directory = tmp_path / "demo"
    output = run(str(directory), *SMALL)
    return directory, output


def test_it_writes_three_videos_of_the_same_size_and_length(demo):
    directory, output = demo

    infos = [probe_video(directory / name) for name in NAMES]

    assert sorted(p.name for p in directory.iterdir()) == sorted(NAMES)
    assert {(info.frames, info.width, info.height, info.fps) for info in infos} == {(13, 128, 72, 24.0)}
    for name in NAMES:
        # Its size as every page and command writes sizes (decimal units: kB, not KB).
        assert f"{directory / name}  ({byte_size((directory / name).stat().st_size)})" in output
    assert f'python manage.py cosmos_run "cyberpunk city at night" {directory}' in output


def test_it_lines_up_depth_and_segmentation_with_colour(demo):
    directory, _ = demo
    colour, depth, segmentation = (frames_of(directory / name) for name in NAMES)
    ball_centres = []
    for index in (0, 12):
        ball = class_mask(segmentation[index], "ball")
        red = colour[index].astype(int)
        looks_red = (red[:, :, 0] > red[:, :, 1] + 60) & (red[:, :, 0] > red[:, :, 2] + 60)
        assert iou(ball, looks_red) > 0.75

        # Depth: the ball is nearer (brighter) than the ground behind it on the same rows,
        # and the ground just left and right of it is not.
        gray = depth[index][:, :, 0].astype(int)
        nearer = gray > np.median(gray, axis=1, keepdims=True) + 12
        rows, columns = np.nonzero(ball)
        top, bottom, left, right = rows.min(), rows.max(), columns.min(), columns.max()
        upper_half = ball.copy()
        upper_half[(top + bottom) // 2 :] = False
        assert nearer[upper_half].mean() > 0.9
        middle = slice(top + (bottom - top) // 3, bottom - (bottom - top) // 3)
        beside = np.concatenate([nearer[middle, left - 5 : left - 1], nearer[middle, right + 2 : right + 6]])
        assert beside.mean() < 0.1
        ball_centres.append(centroid(ball))

    # The ball rolls across the view, so the checks above compared a moving object.
    assert abs(ball_centres[1][1] - ball_centres[0][1]) > 10


def test_it_changes_every_frame(demo):
    directory, _ = demo

    frames = np.array(frames_of(directory / "color.mp4"), dtype=np.int16)

    differences = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    assert differences.min() > 0.1


def test_it_gives_every_class_its_own_flat_colour(demo):
    directory, _ = demo

    segmentation = frames_of(directory / "segmentation.mp4")[6]

    for name in SEGMENT_COLORS:
        assert class_mask(segmentation, name).sum() > 10, name


def test_it_refuses_to_overwrite_without_force(tmp_path):
    (tmp_path / "color.mp4").write_bytes(b"my own render")

    with pytest.raises(CommandError, match=r"already has color\.mp4.*--force") as raised:
        run(str(tmp_path), *SMALL)

    assert raised.value.returncode == 2
    assert [p.name for p in tmp_path.iterdir()] == ["color.mp4"]
    assert (tmp_path / "color.mp4").read_bytes() == b"my own render"


def test_it_overwrites_with_force(tmp_path):
    (tmp_path / "color.mp4").write_bytes(b"my own render")

    run(str(tmp_path), *SMALL, "--force")

    assert probe_video(tmp_path / "color.mp4").frames == 13
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(NAMES)


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (["--frames", "0"], "--frames must be between 1 and 5000, got 0"),
        (["--width", "127"], "--width must be an even number between 64 and 4096, got 127"),
        (["--height", "32"], "--height must be an even number between 64 and 4096, got 32"),
        (["--fps", "121"], "--fps must be between 1 and 120, got 121"),
    ],
)
def test_it_rejects_bad_arguments_and_writes_nothing(tmp_path, flags, problem):
    directory = tmp_path / "new"

    with pytest.raises(CommandError) as raised:
        run(str(directory), *SMALL, *flags)

    assert str(raised.value) == problem
    assert raised.value.returncode == 2
    assert not directory.exists()


def test_it_refuses_a_file_in_place_of_the_folder(tmp_path):
    target = tmp_path / "demo"
    target.write_text("not a folder")

    with pytest.raises(CommandError, match="is a file, not a folder") as raised:
        run(str(target), *SMALL)

    assert raised.value.returncode == 2


def test_it_registers_the_folder_as_an_input_set_of_its_owner(tmp_path, alice, monkeypatch):
    monkeypatch.delenv("COSMOS_USER", raising=False)
    output = run(str(tmp_path / "street"), *SMALL, "--owner", "alice")

    input_set = InputSet.objects.get()
    assert (input_set.name, input_set.directory, input_set.owner) == (
        "street",
        str(tmp_path / "street"),
        alice,
    )
    assert (input_set.frames, input_set.width, input_set.height) == (13, 128, 72)
    assert input_set.modalities == ["color", "depth", "seg"] and not input_set.pending
    assert 'Registered input set "street" (the New run page offers it to alice)' in output


def test_it_takes_the_owner_from_cosmos_user_and_a_name(tmp_path, alice, monkeypatch):
    monkeypatch.setenv("COSMOS_USER", "alice")
    run(str(tmp_path / "demo"), *SMALL, "--name", "my demo")

    assert InputSet.objects.get().name == "my demo" and InputSet.objects.get().owner == alice


def test_it_says_who_sees_an_input_set_without_owner(tmp_path, monkeypatch):
    monkeypatch.delenv("COSMOS_USER", raising=False)
    output = run(str(tmp_path / "demo"), *SMALL)

    assert InputSet.objects.get().owner is None
    assert (
        "no owner: the New run page offers it to staff users; --owner USERNAME gives it to a user" in output
    )


def test_it_refreshes_its_input_set_when_written_again(tmp_path, alice, monkeypatch):
    monkeypatch.delenv("COSMOS_USER", raising=False)
    run(str(tmp_path / "demo"), *SMALL, "--owner", "alice")
    run(str(tmp_path / "demo"), "--frames", "9", "--width", "128", "--height", "72", "--force")

    input_set = InputSet.objects.get()
    assert input_set.frames == 9 and input_set.owner == alice  # the owner stays


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (
            ["--name", "taken"],
            "an input set named 'taken' exists already, for /elsewhere: choose another --name",
        ),
        (["--owner", "nobody"], "--owner nobody: no such user"),
        (["--name", " "], "--name: give the input set a name of 1–200 characters"),
    ],
)
def test_it_refuses_an_input_set_it_cannot_register_before_writing(tmp_path, flags, problem):
    InputSet.objects.create(name="taken", directory="/elsewhere", frames=1, fps=24, width=2, height=2)
    directory = tmp_path / "demo"

    with pytest.raises(CommandError) as raised:
        run(str(directory), *SMALL, *flags)

    assert str(raised.value) == problem and raised.value.returncode == 2
    assert not directory.exists()
