from django.urls import reverse

from inputs.models import InputSet


def test_it_lists_input_sets_with_their_size_and_videos(client, staff, alice):
    InputSet.objects.create(
        name="harbour",
        directory="/data/inputs/harbour",
        owner=alice,
        frames=48,
        fps=24.0,
        width=1280,
        height=704,
        modalities=["color", "depth"],
        metadata={"source": "/renders/harbour"},
    )
    client.force_login(staff)

    page = client.get(reverse("admin:inputs_inputset_changelist")).content.decode()

    assert "harbour" in page and "1280×704" in page and "color, depth" in page and "alice" in page


def test_it_shows_an_input_set_read_only_but_for_name_and_owner(client, staff):
    input_set = InputSet.objects.create(
        name="harbour", directory="/data/inputs/harbour", frames=48, fps=24.0, width=1280, height=704
    )
    client.force_login(staff)

    page = client.get(reverse("admin:inputs_inputset_change", args=[input_set.pk])).content.decode()

    assert 'name="name"' in page and 'name="owner"' in page
    assert 'name="directory"' not in page and "/data/inputs/harbour" in page


def test_it_leaves_adding_input_sets_to_cosmos_prepare(client, staff):
    client.force_login(staff)

    assert client.get(reverse("admin:inputs_inputset_add")).status_code == 403
