"""The new-run form: fields come from the model's parameter table, so defaults and ranges are written once.

The form only validates and plans; the view creates and queues the run. Any problem the
planner finds is shown next to the field it concerns.
"""

from django import forms
from django.conf import settings
from django.forms.utils import ErrorDict
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from cosmos.profiles import ModelProfile, UnknownModel, profile_for
from cosmos_site.model_types import ModelType, default_model_type
from nodes.models import GpuNode
from prompts.structured import PromptError, parse_prompt, prompt_text_of
from runs.input_choices import FormInputs, InputSetField
from runs.model_fields import ModelFields, unaccepted, words_of
from runs.models import PRIORITY_MAX, PRIORITY_MIN, USER_PRIORITY_MAX
from runs.services.errors import RunRequestError
from runs.services.planning import AUTOMATIC_NODE, RunPlan, run_plan

SWITCHES = "_switches"  # the names of the switches a form showed (see RunForm.switch_names)
MAX_SWITCHES = 100


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(MultipleFileField, self).clean(item, initial) for item in files]


def node_choices(model: str | None = None) -> list[tuple[str, str]]:
    """Automatic placement, then each enabled node (offering ``model``, if given) with its GPU count."""
    nodes = GpuNode.objects.filter(enabled=True).order_by("name")
    if model is not None:
        nodes = nodes.offering(model)
    named = [(node.name, f"{node.name} ({node.gpu_count} GPU{pluralize(node.gpu_count)})") for node in nodes]
    return [(AUTOMATIC_NODE, "Automatic (least busy)"), *named]


class RunForm(forms.Form):
    """A new run of one model: its own text, inputs, controls and parameters (runs/model_fields.py)."""

    prompt_text = forms.CharField(label="Prompt", widget=forms.Textarea(attrs={"rows": 3}), strip=True)
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
        self.profile, unknown = self._chosen_profile()
        self.inputs = FormInputs(self, user)  # the input set choices, and uploads kept across errors
        self.fields["node"].choices = node_choices(self.profile.name)
        self.fields["model_type"].widget.attrs.update(
            {
                # Another model's fields: the form again, for that model, with what was typed so far.
                "hx-get": reverse("run_new"),
                "hx-trigger": "change",
                "hx-target": "#run-form",
                "hx-swap": "outerHTML",
                # The switches shown go too: one left out of the query was unchecked, not absent.
                "hx-include": f"#run-form :is(textarea, select, input:not([type=file], [type=hidden])), "
                f"#run-form [name={SWITCHES}]",
            }
        )
        # The files chosen stay chosen when another model's form (or the form with its errors) comes in.
        self.fields["uploads"].widget.attrs["hx-preserve"] = "true"
        self.model_fields = ModelFields(self, self.profile)
        self.hints, self.parameters = self.model_fields.hints, self.model_fields.parameters
        self._fit_words()
        if not self.is_bound:
            self._keep_typed_switches()
            self._keep_valid_choices()
            if unknown:
                # Beside the model field; the form shows the default model's fields meanwhile.
                self.initial["model_type"] = self.profile.name
                message = f"There is no model {unknown[:40]!r}: showing {self.profile.label}; choose another."
                self._errors = ErrorDict({"model_type": self.error_class([message])})
        self.plan: RunPlan | None = None
        self.control_errors: list[str] = []  # errors about the controls as a whole (none is on)

    def _chosen_profile(self) -> tuple[ModelProfile, str]:
        """The model the form is for (the one posted, else asked for, else the default), and a name
        asked for that is no model ("" when none)."""
        chosen = self.data.get("model_type") if self.is_bound else None
        chosen = chosen or self.initial.get("model_type") or default_model_type()
        try:
            return profile_for(chosen), ""
        except UnknownModel:  # a bad post: model_type's own validation says so
            return profile_for(default_model_type()), str(chosen)

    def _fit_words(self) -> None:
        """The prompt and input fields in the model's words; no negative prompt where it reads none."""
        words = self.words = words_of(self.profile)
        prompt = self.fields["prompt_text"]
        prompt.label, prompt.help_text, prompt.required = (
            words.prompt_label,
            words.prompt_help,
            words.prompt_required,
        )
        if not words.negative_prompt:
            del self.fields["negative_prompt"]
        self.fields["input_folder"].help_text = words.inputs_help
        self.fields["uploads"].help_text = words.uploads_help

    @property
    def switch_names(self) -> str:
        """The form's switches (checkboxes), sent with a model swap: a browser sends only checked ones."""
        return " ".join(name for name, field in self.fields.items() if isinstance(field, forms.BooleanField))

    def _keep_typed_switches(self) -> None:
        """Switches as another model's form had them: one it showed and did not send was unchecked
        (not the model's default), and a value typed by hand ("false", "0") reads as it says."""
        shown = str(self.initial.pop(SWITCHES, "") or "").split()[:MAX_SWITCHES]
        for name, field in self.fields.items():
            if not isinstance(field, forms.BooleanField):
                continue
            if name in self.initial:
                self.initial[name] = field.to_python(self.initial[name])
            elif name in shown:
                self.initial[name] = False

    def _keep_valid_choices(self) -> None:
        """Typed values another model's form sent keep only where this model has that choice."""
        for name, field in self.fields.items():
            if isinstance(field, forms.ChoiceField) and name in self.initial:
                valid = {str(value) for value, _ in field.choices}
                if str(self.initial[name]) not in valid:
                    del self.initial[name]

    @property
    def weight_fields(self):
        return self.model_fields.weight_fields

    @property
    def lead_fields(self):
        """Parameters shown beside the model (its mode, type or size), not among the advanced ones."""
        return self.model_fields.lead_fields

    @property
    def parameter_groups(self) -> list[tuple[str, list]]:
        return self.model_fields.parameter_groups

    @property
    def has_negative_prompt(self) -> bool:
        return "negative_prompt" in self.fields

    def clean_prompt_text(self) -> str:
        return _prompt_text_field(self.cleaned_data["prompt_text"], "the prompt")

    def clean_negative_prompt(self) -> str:
        return _prompt_text_field(self.cleaned_data["negative_prompt"], "the negative prompt")

    def clean(self) -> dict:
        data = super().clean()
        input_dir = self.inputs.folder(data)  # None: no inputs (text to image or video)
        for name in unaccepted(self, self.data):
            # Never dropped quietly: the run would not be the one asked for.
            self.add_error(None, f"{self.profile.label} has no setting {name!r}; nothing was queued.")
        if self.errors:
            return data
        if input_dir is None and self.profile.needs_video:
            self.add_error("input_folder", self.words.inputs_missing)
            return data
        weights, parameters = self.model_fields.given(data)
        try:
            self.plan = run_plan(
                prompt_text=data["prompt_text"] or None,
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
    """Form values that reproduce a run (edit and run again), in its model's own fields."""
    parameters = run.execution_config.get("parameters") or run.prompt.parameters
    initial = {
        "prompt_text": _editable(run.prompt.prompt_text),
        "negative_prompt": _editable(run.prompt.negative_prompt),
        "model_type": run.model_type,
        "input_folder": run.prompt.inputs.get("dir", ""),
        "node": run.node.name if run.node else AUTOMATIC_NODE,
        "priority": run.priority,
    }
    try:
        profile = profile_for(run.model_type)
    except UnknownModel:
        return initial
    controls = parameters.get("controls") or {}
    if controls:  # the same controls: the others off, not the folder's defaults
        initial.update({f"weight_{hint}": controls.get(hint, 0) for hint in profile.hints})
    # Without what its inputs decided (a transfer's length and rate): given again, they would be refused.
    parameters = profile.carried_over(parameters)
    initial.update(
        {
            param.name: _shown_number(parameters[param.name])
            for param in profile.parameters
            if parameters.get(param.name) is not None
        }
    )
    return initial


def _shown_number(value):
    """A stored setting as its field shows it: a whole float as a whole number (6, not 6.0)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class ModelSelect(forms.Select):
    """The Queue runs model: choosing one shows the page again with its settings (a button does it
    on a page without JavaScript; with it, Enter in a field still queues the runs)."""

    REFRESH = (
        "this.form.insertAdjacentHTML('beforeend', '<input type=hidden name=_refresh value=1>');"
        " this.form.submit()"
    )
    BUTTON = '<noscript><button type="submit" name="_refresh" value="1">Show its settings</button></noscript>'

    def render(self, name, value, attrs=None, renderer=None):
        select = super().render(name, value, {**(attrs or {}), "onchange": self.REFRESH})
        return format_html("{} {}", select, mark_safe(self.BUTTON))  # a constant


class QueueRunsForm(forms.Form):
    """Settings for one new run of each selected prompt; every blank field keeps the prompt's own.

    The settings are those of the model chosen (the selected prompts' own when they share one),
    made by the New run form's builder; with prompts of several models and none chosen, only the
    node and priority.
    """

    model_type = forms.ChoiceField(label="Model", required=False, widget=ModelSelect)
    node = forms.ChoiceField(label="GPU node", required=False)
    priority = forms.IntegerField(
        initial=0,
        min_value=PRIORITY_MIN,
        max_value=PRIORITY_MAX,
        help_text="Higher runs first; equal priorities go in order.",
    )

    def __init__(self, *args, prompts_model: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["model_type"]
        field.choices = [("", "Each prompt's own"), *ModelType.choices]
        field.initial = prompts_model or ""
        chosen = (self.data if self.is_bound else self.initial).get("model_type", field.initial)
        try:
            self.profile = profile_for(chosen) if chosen else None
        except UnknownModel:  # a bad post: model_type's own validation says so
            self.profile = None
        model = self.profile.name if self.profile else None
        self.fields["node"].choices = [
            ("", f"Default ({settings.COSMOS_DEFAULT_NODE})"),
            *node_choices(model),
        ]
        self.model_fields = ModelFields(self, self.profile, override=True) if self.profile else None
        if self.model_fields is None:
            field.help_text = "Choose a model to change its settings for every run."

    def clean(self) -> dict:
        data = super().clean()
        for name in unaccepted(self, self.data):
            where = self.profile.label if self.profile else "each prompt's own model (choose a model first)"
            self.add_error(None, f"{name!r} is not a setting of {where}; nothing was queued.")
        return data

    @property
    def model(self) -> str | None:
        """The model every run uses (None: each prompt's own)."""
        return self.cleaned_data.get("model_type") or None

    def parameters(self) -> dict:
        """The parameters given (to override each prompt's)."""
        return self.model_fields.given(self.cleaned_data)[1] if self.model_fields else {}

    def weights(self) -> dict[str, float]:
        return self.model_fields.given(self.cleaned_data)[0] if self.model_fields else {}
