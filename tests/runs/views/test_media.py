from pathlib import Path

from django.urls import reverse

from tests.html import without_csrf_tokens


def read(response) -> bytes:
    return b"".join(response.streaming_content)


def test_it_serves_the_whole_video_with_range_support(client, alice, finished_run):
    client.force_login(alice)
    response = client.get(reverse("run_file", args=[finished_run.id, "output.mp4"]))
    assert response.status_code == 200 and response["Content-Type"] == "video/mp4"
    assert response["Accept-Ranges"] == "bytes"
    assert read(response) == Path(finished_run.outputs["video"]).read_bytes()


def test_it_serves_byte_ranges_so_videos_seek(client, alice, finished_run):
    data = Path(finished_run.outputs["video"]).read_bytes()
    client.force_login(alice)
    url = reverse("run_file", args=[finished_run.id, "output.mp4"])
    middle = client.get(url, headers={"Range": "bytes=100-199"})
    assert middle.status_code == 206
    assert middle["Content-Range"] == f"bytes 100-199/{len(data)}" and middle["Content-Length"] == "100"
    assert read(middle) == data[100:200]
    assert read(client.get(url, headers={"Range": "bytes=-50"})) == data[-50:]
    assert read(client.get(url, headers={"Range": "bytes=200-"})) == data[200:]
    too_far = client.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert too_far.status_code == 416 and too_far["Content-Range"] == f"bytes */{len(data)}"


def test_it_serves_only_the_runs_own_files(client, alice, bob, finished_run):
    client.force_login(alice)
    assert client.get(reverse("run_file", args=[finished_run.id, "../../secret_key"])).status_code == 404
    assert client.get(reverse("run_file", args=[finished_run.id, "missing.mp4"])).status_code == 404
    assert client.get(reverse("run_input", args=[finished_run.id, "color"])).status_code == 200
    assert client.get(reverse("run_input", args=[finished_run.id, "lidar"])).status_code == 404
    client.force_login(bob)
    assert client.get(reverse("run_input", args=[finished_run.id, "color"])).status_code == 404


def test_it_keeps_media_behind_login(client, finished_run):
    response = client.get(reverse("run_file", args=[finished_run.id, "output.mp4"]))
    assert response.status_code == 302


def test_it_serves_an_image_runs_image_and_thumbnail_as_jpeg(client, alice, staff, image_run):
    for user in (alice, staff):
        client.force_login(user)
        for name in ("output.jpg", "thumbnail.jpg"):
            response = client.get(reverse("run_file", args=[image_run.id, name]))
            assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
            assert read(response) == (Path(image_run.outputs["dir"]) / name).read_bytes()


def test_it_answers_a_stranger_asking_for_an_image_as_if_there_were_none(client, bob, image_run):
    client.force_login(bob)
    theirs = client.get(reverse("run_file", args=[image_run.id, "output.jpg"]))
    nobodys = client.get(reverse("run_file", args=["rs_doesnotexist00", "output.jpg"]))
    assert theirs.status_code == nobodys.status_code == 404
    # The same page, byte for byte, but for the CSRF token the site's pages carry (masked anew each time).
    assert without_csrf_tokens(theirs.content) == without_csrf_tokens(nobodys.content)
