from pathlib import PurePosixPath

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from cosmos_site.secrets import SecretUnreadable
from nodes.models import GpuNode
from tests.factories import GpuNodeFactory


def test_it_creates_local_sim_on_set_up(db, settings):
    node = GpuNode.objects.get(name="local-sim")
    assert (node.transport, node.launcher, node.enabled) == ("local", "sim", True)
    assert node.time_scale == settings.COSMOS_LOCAL_SIM_TIME_SCALE


def test_it_roots_a_local_node_in_the_data_folder(db, data_dir):
    node = GpuNode.objects.get(name="local-sim")
    assert node.root == PurePosixPath(data_dir / "nodes" / "local-sim")
    assert node.checkpoints == node.root / "checkpoints"


def test_it_uses_the_given_remote_root():
    node = GpuNode(name="h100", remote_root="/data/cosmos", checkpoint_dir="/models")
    assert node.root == PurePosixPath("/data/cosmos")
    assert node.checkpoints == PurePosixPath("/models")


@pytest.mark.parametrize(("field", "value"), [("gpu_count", 0), ("time_scale", 0.0), ("time_scale", -1.0)])
def test_it_keeps_gpu_count_and_time_scale_positive(db, field, value):
    with pytest.raises(IntegrityError):
        GpuNode.objects.create(name="bad", **{field: value})


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"transport": "ssh", "remote_root": ""}, "remote_root"),
        ({"remote_root": "relative/path"}, "remote_root"),
    ],
)
def test_it_validates_node_settings(db, fields, error_field):
    node = GpuNode(name="n", **{"launcher": "sim", **fields})
    with pytest.raises(ValidationError) as raised:
        node.full_clean()
    assert error_field in raised.value.message_dict


def test_it_keeps_the_hugging_face_token_encrypted(db):
    node = GpuNodeFactory()
    assert not node.has_hf_token and node.hf_token() == ""
    node.set_hf_token("hf_kept_secret")
    node = GpuNode.objects.get(pk=node.pk)
    assert node.has_hf_token and "hf_kept_secret" not in node.hf_token_encrypted
    assert node.hf_token() == "hf_kept_secret"


def test_it_names_the_node_and_the_fix_when_its_token_was_encrypted_under_another_key(db, settings):
    node = GpuNodeFactory(name="h100-a")
    node.set_hf_token("hf_kept_secret")
    settings.SECRET_KEY = "another key than the one the token was encrypted under"
    with pytest.raises(SecretUnreadable) as raised:
        GpuNode.objects.get(pk=node.pk).hf_token()
    message = str(raised.value)
    assert "Hugging Face token of node h100-a cannot be decrypted" in message
    assert "set it again with cosmos_node token h100-a" in message
    assert "hf_kept_secret" not in message
