"""The new-run form: fields come from the model's parameter table, so defaults and ranges are written once.

The form only validates and plans; the view creates and queues the run. Any problem the
planner finds is shown next to the field it concerns.
"""

from django import forms
from django.conf import settings
from django.template.defaultfilters import pluralize
from django.urls import reverse

from cosmos.humanize import number_range
from cosmos.params import Param
from cosmos.profiles import ModelProfile, UnknownModel, profile_for, transfer1_spec
from cosmos.profiles.cosmos3_params import AUTO, TRANSFER_MODES, TRANSFER_ONLY
from cosmos_site.model_types import ModelType, default_model_type
from nodes.models import GpuNode
from prompts.structured import PromptError, parse_prompt, prompt_text_of
from runs.input_choices import FormInputs, InputSetField
from runs.models import PRIORITY_MAX, PRIORITY_MIN, USER_PRIORITY_MAX
from runs.services.errors import RunRequestError
from runs.services.planning import AUTOMATIC_NODE, RunPlan, run_plan


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(MultipleFileField, self).clean(item, initial) for item in files]


def _weight_field(hint: str, help_text: str) -> forms.FloatField:
    """A control hint's weight, 0–1, blank for the model's choice."""
    return forms.FloatField(
        label=f"{hint} weight",
        required=False,
        min_value=0,
        max_value=1,
        widget=forms.NumberInput(attrs={"step": "0.05", "placeholder": "auto"}),
        help_text=help_text,
    )


def _parameter_field(param) -> forms.Field:
    label = param.title
    help_text = f"{param.help} Default {param.default}."
    if param.kind is bool:
        return forms.BooleanField(label=label, required=False, initial=param.default, help_text=param.help)
    if param.choices:
        choices = [(choice, choice.replace("_", " ")) for choice in param.choices]
        return forms.ChoiceField(label=label, choices=choices, initial=param.default, help_text=help_text)
    number = forms.IntegerField if param.kind is int else forms.FloatField
    attrs = {"step": "1" if param.kind is int else "any"}
    return number(
        label=label,
        required=False,
        min_value=param.minimum,
        max_value=param.maximum,
        help_text=f"{help_text} Range {number_range(param.minimum, param.maximum)}.",
        widget=forms.NumberInput(attrs={**attrs, "placeholder": param.default}),
    )


# Models whose form is made from their own parameter table; the others show Transfer1's fields and
# take those of them they share (issue 15 gives every model its own).
OWN_FIELDS = ("cosmos3_nano", "cosmos3_super", "reason2")

# Shown beside the model, outside the advanced settings (Reason2's size picks its checkpoint).
LEAD_PARAMETERS = ("model_mode", "size")

# How an own-table form groups its advanced settings; a parameter in no group goes under "Other".
PARAMETER_GROUPS = (
    ("Size and length", ("resolution", "aspect_ratio", "num_frames", "fps")),
    ("Sampling", ("num_steps", "guidance", "control_guidance", "shift", "seed")),
    (
        "Transfer",
        (
            "num_video_frames_per_chunk",
            "num_conditional_frames",
            "max_frames",
            "preset_edge_threshold",
            "preset_blur_strength",
        ),
    ),
    (
        "Output and GPUs",
        (
            "enable_sound",
            "num_outputs",
            "num_gpus",
            "checkpoint_path",
            "disable_guardrails",
            "offload_guardrail_models",
        ),
    ),
)

MODEL_DEFAULT = "model default"


def _choice_label(choice: str) -> str:
    return choice.replace("_", " ").replace(",", ":")


def own_parameter_field(param: Param) -> forms.Field:
    """A field for one parameter of a model's own table; blank always means the model's default.

    A parameter without a default of its own (None: the model's value for the mode, filled in
    when the run is planned) is an empty field saying "model default".
    """
    kwargs = {"label": param.title, "required": False, "help_text": param.help}
    if param.kind is bool:
        return forms.BooleanField(initial=param.default, **kwargs)
    if param.choices:
        choices = [(choice, _choice_label(choice)) for choice in param.choices]
        return forms.ChoiceField(choices=choices, initial=param.default, **kwargs)
    if param.kind is str:
        return forms.CharField(
            max_length=200, widget=forms.TextInput(attrs={"placeholder": MODEL_DEFAULT}), **kwargs
        )
    number = forms.IntegerField if param.kind is int else forms.FloatField
    placeholder = MODEL_DEFAULT if param.default is None else f"{param.default:g}"
    return number(
        min_value=param.minimum,
        max_value=param.maximum,
        initial=param.default,
        widget=forms.NumberInput(
            attrs={"step": "1" if param.kind is int else "any", "placeholder": placeholder}
        ),
        **kwargs,
    )


def _offered(profile: ModelProfile, param: Param) -> bool:
    """Whether the form shows ``param`` for this model (a transfer's settings need a transfer mode)."""
    if param.name in TRANSFER_ONLY and not _runs_transfers(profile):
        return False
    return param.name != "enable_sound" or getattr(profile, "sound", True)


def _runs_transfers(profile: ModelProfile) -> bool:
    modes = getattr(profile, "modes", ())
    return not modes or bool(set(modes) & set(TRANSFER_MODES))


def _mode_choices(profile: ModelProfile, param: Param) -> list[tuple[str, str]]:
    """ "auto", then the modes this model runs (Super: no transfers)."""
    modes = getattr(profile, "modes", ())
    return [(mode, _choice_label(mode)) for mode in param.choices if mode == AUTO or mode in modes]


def node_choices() -> list[tuple[str, str]]:
    """Automatic placement, then each enabled node with its GPU count."""
    nodes = GpuNode.objects.filter(enabled=True).order_by("name")
    named = [(node.name, f"{node.name} ({node.gpu_count} GPU{pluralize(node.gpu_count)})") for node in nodes]
    return [(AUTOMATIC_NODE, "Automatic (least busy)"), *named]


class RunForm(forms.Form):
    prompt_text = forms.CharField(
        label="Prompt",
        widget=forms.Textarea(attrs={"rows": 3}),
        strip=True,
        help_text='Plain text, or a structured caption: a JSON object such as {"subjects": [{"description": '
        '"…"}], "background_setting": "…", "lighting": {…}}.',
    )
    negative_prompt = forms.CharField(
        label="Negative prompt",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "The model's default"}),
        help_text="Plain text or a structured caption, as the prompt.",
    )
    name = forms.CharField(required=False, max_length=120, help_text="Blank: made from the prompt.")
    model_type = forms.ChoiceField(label="Model", choices=ModelType.choices, initial=default_model_type)
    input_folder = InputSetField()
    uploads = MultipleFileField(
        label="Or upload",
        required=False,
        help_text="color.mp4 and any of depth.mp4, segmentation.mp4, edge.mp4, vis.mp4 — or a .zip of them.",
    )
    node = forms.ChoiceField(label="GPU node", required=False)
    priority = forms.IntegerField(
        initial=0,
        required=False,
        min_value=PRIORITY_MIN,
        max_value=PRIORITY_MAX,
        help_text=f"Higher runs first (0 to {USER_PRIORITY_MAX}; staff may go higher).",
    )

    def __init__(self, *args, like_run=None, user=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        if like_run is not None:
            self.initial.update(_initial_from(like_run))
        self.profile = self._chosen_profile()
        self.own_fields = self.profile.name in OWN_FIELDS
        self.inputs = FormInputs(self, user)  # the input set choices, and uploads kept across errors
        self.fields["node"].choices = node_choices()
        self.fields["model_type"].widget.attrs.update(
            {
                # Another model's fields: the form again, for that model, with what was typed so far.
                "hx-get": reverse("run_new"),
                "hx-trigger": "change",
                "hx-target": "#run-form",
                "hx-swap": "outerHTML",
                "hx-include": "#run-form :is(textarea, select, input:not([type=file], [type=hidden]))",
            }
        )
        if self.own_fields:
            self._add_own_fields()
        else:
            self._add_transfer1_fields()
        self.plan: RunPlan | None = None
        self.control_errors: list[str] = []  # errors about the controls as a whole (none is on)

    def _chosen_profile(self) -> ModelProfile:
        """The model the form is for: the one posted, else the one asked for, else the default."""
        chosen = self.data.get("model_type") if self.is_bound else None
        chosen = chosen or self.initial.get("model_type") or default_model_type()
        try:
            return profile_for(chosen)
        except UnknownModel:  # a bad post: model_type's own validation says so
            return profile_for(default_model_type())

    def _add_transfer1_fields(self) -> None:
        self.hints = transfer1_spec.HINTS
        self.parameters = transfer1_spec.PARAMETERS
        for hint in self.hints:
            self.fields[f"weight_{hint}"] = _weight_field(
                hint, "0–1; blank: 0.5 when the folder has this control's video, else off (edge: on)."
            )
        for param in self.parameters:
            self.fields[param.name] = _parameter_field(param)

    def _add_own_fields(self) -> None:
        """The model's own hints and parameter table, each field made from its Param."""
        self.hints = self.profile.hints if _runs_transfers(self.profile) else ()
        self.parameters = tuple(param for param in self.profile.parameters if _offered(self.profile, param))
        for hint in self.hints:
            self.fields[f"weight_{hint}"] = _weight_field(
                hint,
                "Transfers only. 0–1; 0: off; blank: 1 for each control video the folder has (else edge).",
            )
        for param in self.parameters:
            self.fields[param.name] = own_parameter_field(param)
            if param.name == "model_mode":
                self.fields[param.name].choices = _mode_choices(self.profile, param)
        if self.profile.needs_video:
            return  # a model that asks about a video keeps the form's own words for its inputs
        self.fields["input_folder"].help_text = (
            "Optional: none makes text2video (or text2image). An input video makes a video2video "
            "transfer, an image image2video. Or upload below."
        )
        self.fields["uploads"].help_text = (
            "color.mp4 and any of depth.mp4, segmentation.mp4, edge.mp4, blur.mp4, wsm.mp4 — or a .zip "
            "of them."
        )

    @property
    def weight_fields(self):
        return [self[f"weight_{hint}"] for hint in self.hints]

    @property
    def lead_fields(self):
        """Parameters shown beside the model (the mode), not among the advanced ones."""
        return [self[param.name] for param in self.parameters if param.name in LEAD_PARAMETERS]

    @property
    def parameter_fields(self):
        return [self[param.name] for param in self.parameters if param.name not in LEAD_PARAMETERS]

    @property
    def parameter_groups(self) -> list[tuple[str, list]]:
        """The advanced parameters under their headings: the model's own groups, or one for Transfer1's."""
        if not self.own_fields:
            return [("", self.parameter_fields)]
        names = {param.name for param in self.parameters}
        groups = [
            (legend, [self[name] for name in members if name in names])
            for legend, members in PARAMETER_GROUPS
        ]
        grouped = {name for _, members in PARAMETER_GROUPS for name in members}
        rest = [field for field in self.parameter_fields if field.name not in grouped]
        return [(legend, fields) for legend, fields in [*groups, ("Other", rest)] if fields]

    def clean_prompt_text(self) -> str:
        return _prompt_text_field(self.cleaned_data["prompt_text"], "the prompt")

    def clean_negative_prompt(self) -> str:
        return _prompt_text_field(self.cleaned_data["negative_prompt"], "the negative prompt")

    def clean(self) -> dict:
        data = super().clean()
        input_dir = self.inputs.folder(data)  # None: no inputs (text to image or video)
        if self.errors:
            return data
        if input_dir is None and self.profile.needs_video:
            self.add_error("input_folder", "Pick an input set, or upload the videos.")
            return data
        weights, parameters = self._own_settings(data) if self.own_fields else self._shared_settings(data)
        try:
            self.plan = run_plan(
                prompt_text=data["prompt_text"],
                input_dir=input_dir,
                name=data.get("name", ""),
                negative_prompt=data.get("negative_prompt") or "",
                weights=weights,
                parameters=parameters,
                node=data.get("node") or AUTOMATIC_NODE,
                model=self.profile.name,
                priority=data.get("priority") or 0,
                requester=self.user,
            )
        except RunRequestError as exc:
            self.reject(exc)
            return data
        if not self.inputs.used():
            self.add_error("uploads", "The upload was deleted after a day unused: upload the videos again.")
            self.plan = None
        return data

    def _own_settings(self, data: dict) -> tuple[dict, dict]:
        """The weights and parameters given; a blank or default value leaves the model its own."""
        weights = {
            hint: data[f"weight_{hint}"] for hint in self.hints if data.get(f"weight_{hint}") is not None
        }
        parameters = {
            param.name: data[param.name]
            for param in self.parameters
            if data.get(param.name) not in (None, "") and data[param.name] != param.default
        }
        return weights, parameters

    def _shared_settings(self, data: dict) -> tuple[dict, dict]:
        """Transfer1's fields; another model takes those of them it shares (steps, seed…)."""
        profile = self.profile
        known = {param.name for param in profile.parameters}
        weights = {
            hint: data[f"weight_{hint}"]
            for hint in self.hints
            if data.get(f"weight_{hint}") is not None and hint in profile.hints
        }
        parameters = {
            param.name: data[param.name]
            for param in self.parameters
            if param.name in known
            and data.get(param.name) not in (None, "")
            and (param.kind is not bool or data[param.name] != param.default)
            and (profile.name == "transfer1" or data[param.name] != param.default)
        }
        return weights, parameters

    def reject(self, exc: RunRequestError) -> None:
        """Show a planning or creating error next to its field (an upload stays chosen, to send again)."""
        if exc.field == "controls" and self.hints:
            self.control_errors.append(str(exc))
        else:
            field = exc.field if exc.field in self.fields else None
            if exc.field == "inputs":
                field = "input_folder"
            self.add_error(field, str(exc))
        self.plan = None


def _prompt_text_field(text: str, label: str) -> str:
    """A prompt field's text as stored (a caption as compact JSON); an invalid caption is the field's error.

    run_plan checks it again (it is the rule's one home for every way in); checking here too
    shows the error beside the field even when the form has others.
    """
    try:
        return parse_prompt(text, label=label).text
    except PromptError as exc:
        raise forms.ValidationError(str(exc)[:1].upper() + str(exc)[1:] + ".") from None


def _editable(text: str) -> str:
    """A stored prompt text to edit: a caption indented, plain text as it is."""
    return prompt_text_of(text).pretty_json or text


def _initial_from(run) -> dict:
    """Form values that reproduce a run (edit and run again)."""
    parameters = run.execution_config.get("parameters") or run.prompt.parameters
    initial = {
        "prompt_text": _editable(run.prompt.prompt_text),
        "negative_prompt": _editable(run.prompt.negative_prompt),
        "model_type": run.model_type,
        "input_folder": run.prompt.inputs.get("dir", ""),
        "node": run.node.name if run.node else AUTOMATIC_NODE,
        "priority": run.priority,
    }
    controls = parameters.get("controls") or {}
    if run.model_type in OWN_FIELDS:
        table = profile_for(run.model_type).parameters
        initial.update({f"weight_{hint}": weight for hint, weight in controls.items()})
        if parameters.get("model_mode") in TRANSFER_MODES:
            # A transfer's length and rate are its input's: given again, they would be refused.
            parameters = {key: value for key, value in parameters.items() if key not in ("num_frames", "fps")}
    else:
        table = transfer1_spec.PARAMETERS
        initial.update({f"weight_{hint}": controls.get(hint, 0) for hint in transfer1_spec.HINTS})
    initial.update(
        {param.name: parameters[param.name] for param in table if parameters.get(param.name) is not None}
    )
    return initial


def _override_field(param: Param) -> forms.Field:
    """An optional field for one model parameter: blank keeps each prompt's own value."""
    label = param.title
    if param.kind is bool:
        return forms.NullBooleanField(
            label=label,
            required=False,
            widget=forms.Select(
                choices=[("unknown", "Keep each prompt's"), ("true", "Yes"), ("false", "No")]
            ),
            help_text=f"{param.help} Default {'yes' if param.default else 'no'}.",
        )
    if param.choices:
        choices = [
            ("", "Keep each prompt's"),
            *((choice, choice.replace("_", " ")) for choice in param.choices),
        ]
        return forms.ChoiceField(
            label=label, choices=choices, required=False, help_text=f"{param.help} Default {param.default}."
        )
    number = forms.IntegerField if param.kind is int else forms.FloatField
    return number(
        label=label,
        required=False,
        min_value=param.minimum,
        max_value=param.maximum,
        help_text=f"{param.help} {param.describe_range().capitalize()}; default {param.default}.",
        widget=forms.NumberInput(
            attrs={"step": "1" if param.kind is int else "any", "placeholder": "keep each prompt's"}
        ),
    )


class QueueRunsForm(forms.Form):
    """Settings for one new run of each selected prompt; every blank field keeps the prompt's own."""

    node = forms.ChoiceField(label="GPU node", required=False)
    priority = forms.IntegerField(initial=0, help_text="Higher runs first; equal priorities go in order.")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["node"].choices = [("", f"Default ({settings.COSMOS_DEFAULT_NODE})"), *node_choices()]
        for hint in transfer1_spec.HINTS:
            self.fields[f"weight_{hint}"] = forms.FloatField(
                label=f"{hint} control weight",
                required=False,
                min_value=0,
                max_value=1,
                widget=forms.NumberInput(attrs={"step": "0.05", "placeholder": "keep each prompt's"}),
                help_text="0 to 1; 0 turns the control off.",
            )
        for param in transfer1_spec.PARAMETERS:
            self.fields[param.name] = _override_field(param)

    @property
    def weight_fields(self):
        return [self[f"weight_{hint}"] for hint in transfer1_spec.HINTS]

    @property
    def parameter_fields(self):
        return [self[param.name] for param in transfer1_spec.PARAMETERS]

    def parameters(self) -> dict:
        """The parameters given (to override each prompt's)."""
        return {
            param.name: self.cleaned_data[param.name]
            for param in transfer1_spec.PARAMETERS
            if self.cleaned_data.get(param.name) not in (None, "")
        }

    def weights(self) -> dict[str, float]:
        return {
            hint: self.cleaned_data[f"weight_{hint}"]
            for hint in transfer1_spec.HINTS
            if self.cleaned_data.get(f"weight_{hint}") is not None
        }
