"""A model's own form fields, made from its profile: its parameter table, its control hints, its words.

The New run form and the admin's Queue runs form build their fields here, so each model shows
exactly the settings it takes; the run page names settings with the same labels. Which
parameters a model offers follows its profile: a Cosmos 3 checkpoint without transfers shows
no transfer settings, and one without sound no sound switch.
"""

from dataclasses import dataclass
from typing import Any

from django import forms

from cosmos import humanize
from cosmos.params import Param
from cosmos.profiles import PROFILES, ModelProfile
from cosmos.profiles.cosmos3_params import AUTO, IMAGE_MODES, TRANSFER_MODES, TRANSFER_ONLY

MODEL_DEFAULT = "model default"
SOUND_MODES = ("text2video", "image2video")  # where Cosmos3-Nano makes a sound track
KEEP = "keep each prompt's"

# Shown beside the model, outside the advanced settings: what the run is (its mode, Reason2's size,
# Predict2.5's inference type) and the upscaler's one setting that matters. A lead choice is always
# sent, so the run does what the form shows.
LEAD_PARAMETERS = ("model_mode", "inference_type", "size", "control_weight")

# How the advanced settings are grouped; a parameter in no group goes under "Other".
PARAMETER_GROUPS = (
    ("Model options", ("model_variant", "use_distilled", "checkpoint_path", "reasoning", "upsample_prompt")),
    (
        "Size and length",
        (
            "resolution",
            "aspect_ratio",
            "num_frames",
            "num_output_frames",
            "enable_autoregressive",
            "fps",
            "total_pixels",
            "max_model_len",
        ),
    ),
    (
        "Sampling",
        (
            "num_steps",
            "guidance",
            "control_guidance",
            "shift",
            "sigma_max",
            "seed",
            "max_tokens",
            "temperature",
            "top_p",
            "top_k",
            "presence_penalty",
            "repetition_penalty",
        ),
    ),
    (
        "Transfer settings",  # not "Controls": that is the weights' own fieldset, above
        (
            "num_video_frames_per_chunk",
            "num_conditional_frames",
            "max_frames",
            "preset_edge_threshold",
            "preset_blur_strength",
            "blur_strength",
            "canny_threshold",
        ),
    ),
    ("Output and GPUs", ("enable_sound", "num_outputs", "num_gpus", "disable_guardrails")),
)
MEMORY_GROUP = "Memory"  # every offload_* switch


@dataclass(frozen=True)
class ModelWords:
    """How the form asks for a model's text and inputs."""

    legend: str = "What to generate"
    prompt_label: str = "Prompt"
    prompt_help: str = (
        'Plain text, or a structured caption: a JSON object such as {"subjects": [{"description": '
        '"…"}], "background_setting": "…", "lighting": {…}}.'
    )
    prompt_required: bool = True
    negative_prompt: bool = True  # the model reads a negative prompt
    inputs_help: str = "Or upload videos below."
    uploads_help: str = "color.mp4 and any of its control videos — or a .zip of them."
    inputs_missing: str = "Pick an input set, or upload the videos."


TRANSFER_UPLOADS = "color.mp4 and any of depth.mp4, segmentation.mp4, edge.mp4, vis.mp4 — or a .zip of them."
ONE_VIDEO = "color.mp4 — or a .zip holding it."
ONE_VIDEO_MISSING = "Pick an input set, or upload the video."
ANSWER = ModelWords(
    legend="What to ask",
    prompt_label="Question",
    prompt_help="What to ask about the video.",
    negative_prompt=False,
    inputs_help="Required: the video to ask about (the folder's color.mp4). Or upload it below.",
    uploads_help=ONE_VIDEO,
    inputs_missing=ONE_VIDEO_MISSING,
)
# The words of each model; one missing here gets the defaults above.
MODEL_WORDS: dict[str, ModelWords] = {
    "transfer1": ModelWords(
        inputs_help="Required: the input video and any control videos. Or upload them below.",
        uploads_help=TRANSFER_UPLOADS,
    ),
    "transfer2_5": ModelWords(
        inputs_help="Required: the input video and any control videos. Or upload them below.",
        uploads_help=TRANSFER_UPLOADS,
    ),
    "predict2_5": ModelWords(
        inputs_help="text2world needs none; image2world starts from the input video's first frame, "
        "video2world from the video itself. Or upload it below.",
        uploads_help=ONE_VIDEO,
    ),
    "cosmos3_nano": ModelWords(
        inputs_help="Optional: none makes text2video (or text2image). An input video makes a video2video "
        "transfer, an image image2video. Or upload below.",
        uploads_help="color.mp4 and any of depth.mp4, segmentation.mp4, edge.mp4, blur.mp4, wsm.mp4 — or a "
        ".zip of them.",
    ),
    "cosmos3_super": ModelWords(
        inputs_help="Optional: none makes text2video (or text2image); an image, or a video's first frame, "
        "makes image2video. Or upload below.",
        uploads_help=ONE_VIDEO,
    ),
    "reason1": ANSWER,
    "reason2": ANSWER,
    "upscale4k": ModelWords(
        legend="What to upscale",
        prompt_help="Optional: what the video shows. Blank: Transfer1's own prompt.",
        prompt_required=False,
        inputs_help="Required: the video to upscale (the folder's color.mp4); the output is 3× its width "
        "and height. Or upload it below.",
        uploads_help=ONE_VIDEO,
        inputs_missing=ONE_VIDEO_MISSING,
    ),
    "prompt_upsampler": ModelWords(
        legend="What to enhance",
        prompt_label="Prompt to enhance",
        prompt_help="Pixtral-12B rewrites it from the video; the result is a new prompt (this one is kept).",
        negative_prompt=False,
        inputs_help="Required: the video the prompt is about (the folder's color.mp4). Or upload it below.",
        uploads_help=ONE_VIDEO,
        inputs_missing=ONE_VIDEO_MISSING,
    ),
}


def words_of(profile: ModelProfile) -> ModelWords:
    return MODEL_WORDS.get(profile.name, ModelWords())


def choice_label(choice: str) -> str:
    """A choice as a person reads it: "very_high" → "very high", "16,9" → "16:9"."""
    return choice.replace("_", " ").replace(",", ":")


def runs_transfers(profile: ModelProfile) -> bool:
    """Whether the model transfers from control videos (a Cosmos 3 checkpoint may not)."""
    modes = getattr(profile, "modes", ())
    return not modes or bool(set(modes) & set(TRANSFER_MODES))


def offered(profile: ModelProfile, param: Param) -> bool:
    """Whether the model's form offers ``param`` (a transfer setting needs a model that transfers)."""
    if param.name in TRANSFER_ONLY and not runs_transfers(profile):
        return False
    return param.name != "enable_sound" or getattr(profile, "sound", True)


def offered_parameters(profile: ModelProfile) -> tuple[Param, ...]:
    return tuple(param for param in profile.parameters if offered(profile, param))


def offered_hints(profile: ModelProfile) -> tuple[str, ...]:
    return profile.hints if runs_transfers(profile) else ()


def applies(profile: ModelProfile, name: str, parameters: dict[str, Any]) -> bool:
    """Whether a run with these settings read ``name``: in Cosmos 3, a transfer's settings only in a
    transfer, sound only with a video made from text or an image, a frame rate only for a video."""
    mode = parameters.get("model_mode")
    if mode is None:
        return True
    if name in TRANSFER_ONLY:
        return mode in TRANSFER_MODES
    if name == "enable_sound":
        return mode in SOUND_MODES
    return not (name == "fps" and mode in IMAGE_MODES)


def every_setting_name() -> set[str]:
    """Every name any model's form may post: a setting sent for a model that lacks it is refused."""
    names = {"negative_prompt"}
    for profile in PROFILES.values():
        names.update(param.name for param in profile.parameters)
        names.update(f"weight_{hint}" for hint in profile.hints)
    return names


# --- one field per parameter --------------------------------------------------------------------


def parameter_field(profile: ModelProfile, param: Param) -> forms.Field:
    """A New run field: blank (or left as shown) is the model's default, which the placeholder says.

    A number is blank unless typed, so a default that follows the inputs (the input's frame rate,
    Reason2's sampling for its reasoning setting) stays the model's to choose.
    """
    kwargs = {"label": param.title, "required": False, "help_text": param.help}
    if param.kind is bool:
        return forms.BooleanField(initial=param.default, **kwargs)
    if param.choices:
        choices = [(choice, choice_label(choice)) for choice in param.choices]
        if param.name == "model_mode":  # "auto", then the modes this checkpoint runs
            modes = getattr(profile, "modes", ())
            choices = [(mode, label) for mode, label in choices if mode == AUTO or mode in modes]
        return forms.ChoiceField(choices=choices, initial=param.default, **kwargs)
    if param.kind is str:
        return forms.CharField(
            max_length=200, widget=forms.TextInput(attrs={"placeholder": MODEL_DEFAULT}), **kwargs
        )
    number = forms.IntegerField if param.kind is int else forms.FloatField
    placeholder = MODEL_DEFAULT if param.default is None else humanize.number(param.default)
    kwargs["help_text"] = f"{param.help}{_range_of(param)}."
    return number(
        min_value=param.minimum,
        max_value=param.maximum,
        widget=forms.NumberInput(
            attrs={"step": "1" if param.kind is int else "any", "placeholder": placeholder}
        ),
        **kwargs,
    )


def _range_of(param: Param) -> str:
    """ " A whole number from 0 to 4,294,967,295" for a bounded number, else nothing."""
    if param.minimum is None or param.maximum is None:
        return ""
    return f" {param.describe_range().capitalize()}"


def weight_field(profile: ModelProfile, hint: str) -> forms.FloatField:
    """A control hint's weight, 0–1; blank: the model's own choice from the input folder."""
    own = profile.default_controls({hint}).get(hint)
    default = f"{own:g} when the folder has its video, else off" if own else "off"
    alone = profile.default_controls(set()).get(hint)
    if alone:
        default += f" ({alone:g} when the folder has no control video at all)"
    note = "Transfers only. " if getattr(profile, "modes", ()) else ""
    return forms.FloatField(
        label=f"{hint.capitalize()} weight",
        required=False,
        min_value=0,
        max_value=1,
        widget=forms.NumberInput(attrs={"step": "0.05", "placeholder": "auto"}),
        help_text=f"{note}0–1; 0: off; blank: {default}.",
    )


def override_field(param: Param) -> forms.Field:
    """A Queue runs field: blank keeps each prompt's own value."""
    kwargs = {"label": param.title, "required": False}
    if param.kind is bool:
        return forms.NullBooleanField(
            widget=forms.Select(
                choices=[("unknown", "Keep each prompt's"), ("true", "Yes"), ("false", "No")]
            ),
            help_text=f"{param.help} Default {'yes' if param.default else 'no'}.",
            **kwargs,
        )
    if param.choices:
        choices = [("", "Keep each prompt's"), *((choice, choice_label(choice)) for choice in param.choices)]
        return forms.ChoiceField(choices=choices, help_text=param.help, **kwargs)
    if param.kind is str:
        return forms.CharField(
            max_length=200,
            widget=forms.TextInput(attrs={"placeholder": KEEP}),
            help_text=param.help,
            **kwargs,
        )
    number = forms.IntegerField if param.kind is int else forms.FloatField
    default = "" if param.default is None else f"; default {humanize.number(param.default)}"
    return number(
        min_value=param.minimum,
        max_value=param.maximum,
        help_text=f"{param.help}{_range_of(param)}{default}.",
        widget=forms.NumberInput(attrs={"step": "1" if param.kind is int else "any", "placeholder": KEEP}),
        **kwargs,
    )


def override_weight_field(hint: str) -> forms.FloatField:
    return forms.FloatField(
        label=f"{hint.capitalize()} weight",
        required=False,
        min_value=0,
        max_value=1,
        widget=forms.NumberInput(attrs={"step": "0.05", "placeholder": KEEP}),
        help_text="0 to 1; 0 turns the control off.",
    )


# --- a model's fields on a form -----------------------------------------------------------------


class ModelFields:
    """The hints and parameters a form shows for one model, added to ``form.fields``.

    ``override``: the Queue runs flavour, where every blank field keeps each prompt's own value.
    """

    def __init__(self, form: forms.Form, profile: ModelProfile, *, override: bool = False) -> None:
        self.form, self.profile, self.override = form, profile, override
        self.hints = offered_hints(profile)
        self.parameters = offered_parameters(profile)
        for hint in self.hints:
            form.fields[f"weight_{hint}"] = (
                override_weight_field(hint) if override else weight_field(profile, hint)
            )
        for param in self.parameters:
            form.fields[param.name] = override_field(param) if override else parameter_field(profile, param)

    @property
    def weight_fields(self) -> list:
        return [self.form[f"weight_{hint}"] for hint in self.hints]

    @property
    def lead_fields(self) -> list:
        return [self.form[param.name] for param in self.parameters if param.name in LEAD_PARAMETERS]

    @property
    def parameter_groups(self) -> list[tuple[str, list]]:
        """The advanced parameters under their headings, in the model's own order within each."""
        names = [param.name for param in self.parameters if param.name not in LEAD_PARAMETERS]
        grouped = {name for _, members in PARAMETER_GROUPS for name in members}
        groups = [
            (legend, [self.form[name] for name in names if name in members])
            for legend, members in PARAMETER_GROUPS
        ]
        memory = [self.form[name] for name in names if name.startswith("offload_")]
        rest = [self.form[name] for name in names if name not in grouped and not name.startswith("offload_")]
        return [
            (legend, fields)
            for legend, fields in [*groups, (MEMORY_GROUP, memory), ("Other", rest)]
            if fields
        ]

    def given(self, data: dict) -> tuple[dict[str, float], dict[str, Any]]:
        """The weights and parameters the user gave (cleaned data); what is left out is the model's.

        New run: a number or text counts when typed, a lead choice always, a switch or another
        choice when it differs from the model's default. Queue runs: whatever is not blank.
        """
        weights = {
            hint: data[f"weight_{hint}"] for hint in self.hints if data.get(f"weight_{hint}") is not None
        }
        parameters = {}
        for param in self.parameters:
            value = data.get(param.name)
            if value is None or value == "":
                continue
            typed = param.kind is not bool and not param.choices
            if self.override or typed or param.name in LEAD_PARAMETERS or value != param.default:
                parameters[param.name] = value
        return weights, parameters


def unaccepted(form: forms.Form, posted) -> list[str]:
    """Settings posted that ``form`` lacks: another model's, or no model's at all. Never dropped quietly."""
    return sorted(
        name
        for name in every_setting_name()
        if name not in form.fields and str(posted.get(name) or "").strip() not in ("", "unknown")
    )
