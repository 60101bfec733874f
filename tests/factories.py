import factory
from django.contrib.auth import get_user_model
from factory.django import DjangoModelFactory

from nodes.models import GpuNode
from prompts.models import Prompt
from prompts.structured import compact_json
from runs.models import Progress, Run


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class GpuNodeFactory(DjangoModelFactory):
    class Meta:
        model = GpuNode

    name = factory.Sequence(lambda n: f"node-{n}")
    transport = "local"
    launcher = "sim"
    time_scale = 0.001


class DockerNodeFactory(GpuNodeFactory):
    """A Docker GPU node reached over SSH (never contacted: for planning and dry runs)."""

    transport = "ssh"
    launcher = "docker"
    host = "gpu.example.org"
    username = "cosmos"
    remote_root = "/srv/cosmos"
    gpu_count = 2


class NodeRuntimeFactory(DjangoModelFactory):
    """How a node runs one model: its image (and options, environment, preflight choices)."""

    class Meta:
        model = "nodes.NodeRuntime"

    node = factory.SubFactory(DockerNodeFactory)
    model_type = "cosmos3_nano"
    docker_image = factory.LazyAttribute(lambda runtime: f"nvcr.io/cosmos/{runtime.model_type}:1")


class InputSetFactory(DjangoModelFactory):
    """A registered input folder; give ``directory`` (and ``modalities``) of one the test wrote."""

    class Meta:
        model = "inputs.InputSet"

    name = factory.Sequence(lambda n: f"inputs-{n}")
    directory = factory.Sequence(lambda n: f"/data/inputs/inputs-{n}")
    owner = factory.SubFactory(UserFactory)
    frames = 25
    fps = 24.0
    width = 128
    height = 72
    modalities = factory.LazyFunction(lambda: ["color"])


class PromptFactory(DjangoModelFactory):
    class Meta:
        model = Prompt

    prompt_text = factory.Sequence(lambda n: f"a foggy harbour at dawn, take {n}")
    name = factory.Sequence(lambda n: f"foggy-harbour-{n}")
    owner = factory.SubFactory(UserFactory)
    # Stored rows of the model most fixtures describe (their parameters are Transfer1's); a test
    # of another model names it.
    model_type = "transfer1"


def sample_caption(subject: str = "A red fox with a bushy tail", **fields) -> dict:
    """A small Cosmos 3 structured caption (the shape of cosmos_framework's inputs/omni/*.json)."""
    return {
        "subjects": [
            {
                "description": subject,
                "appearance_details": "thick winter coat, amber eyes",
                "action": "trots across the snow",
                "number_of_subjects": 1,
            }
        ],
        "background_setting": "a birch forest after fresh snowfall",
        "lighting": {"conditions": "overcast daylight", "direction": "diffuse", "shadows": "soft"},
        "cinematography": {
            "camera_motion": "slow pan left",
            "framing": "wide shot",
            "camera_angle": "eye level",
        },
        "actions": [{"time": "0-3s", "description": "the fox stops and sniffs the air"}],
        "style_medium": "photorealistic video",
        **fields,
    }


class StructuredPromptFactory(PromptFactory):
    """A prompt whose text is a structured caption, stored as its compact JSON."""

    prompt_text = factory.Sequence(
        lambda n: compact_json(sample_caption(f"A red fox with a bushy tail, take {n}"))
    )


class RunFactory(DjangoModelFactory):
    class Meta:
        model = Run

    prompt = factory.SubFactory(PromptFactory)
    owner = factory.SelfAttribute("prompt.owner")
    model_type = factory.SelfAttribute("prompt.model_type")


class ProgressFactory(DjangoModelFactory):
    class Meta:
        model = Progress

    run = factory.SubFactory(RunFactory)
    stage = "running"
    percentage = 10.0


class TagFactory(DjangoModelFactory):
    class Meta:
        model = "prompts.Tag"
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"tag-{n}")
