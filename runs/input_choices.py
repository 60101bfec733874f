"""The New run form's inputs: the input sets it offers, and uploads kept while a form is corrected.

Each choice is shown by name, with its length, size, videos and a still (input_thumbnail_view),
never by server path. A choice's value names an input set (``set-12``) or the folder of one of
the user's earlier prompts (``prompt-<id>``: a folder run from the command line and never
registered); a posted server path is read as the choice with that folder when the user is
offered it (the form's older pages, and ?like= of a run, name folders so) and refused like any
unknown value otherwise. Every lookup is scoped to the user: staff see every ready set, an upload
is its owner's alone.

Uploads: the browser cannot fill a file input again, so files sent with a form that comes back
with errors are stored at once as the user's pending input set, which the form sends back as its
chosen inputs. A run starting from it makes it an input set like any other; one never used is
deleted after a day (inputs.services.input_sets_expire_pending), and one replaced by another
upload at once.

The form calls FormInputs and nothing else here, so its model-specific fields can change apart.
"""

import os
import re
from dataclasses import dataclass, field

from django import forms
from django.urls import reverse

from cosmos.humanize import plural
from inputs.models import InputSet
from inputs.services import input_set_discard, input_set_upload
from inputs.uploads import UploadError
from prompts.models import Prompt

FIELD = "input_folder"
UPLOADS = "uploads"
LATEST = 50  # choices offered at most (the chosen one is added when older)
PROMPTS_READ = 500  # earlier prompts read to find that many folders not registered as sets
MAX_VALUE_LENGTH = 1000

_SET_VALUE = re.compile(r"set-([0-9]{1,18})", re.ASCII)
_PROMPT_VALUE = re.compile(r"prompt-([A-Za-z0-9_]{1,40})", re.ASCII)


@dataclass(frozen=True)
class InputChoice:
    """One choice of inputs as the form shows it."""

    value: str
    name: str
    summary: str = ""  # "121 frames · 640×352 · color, depth, seg"
    directory: str = field(default="", repr=False)  # never shown: what the run reads
    input_set: InputSet | None = field(default=None, repr=False, compare=False)

    def __str__(self) -> str:
        return self.name

    @property
    def uploaded(self) -> bool:
        """A pending upload: the files sent with this form, kept while it is corrected."""
        return self.input_set is not None and self.input_set.pending

    @property
    def thumbnail_url(self) -> str:
        return reverse("input_thumbnail", args=[self.value]) if self.value else ""


NO_INPUTS = InputChoice(value="", name="None")


def set_choice(input_set: InputSet) -> InputChoice:
    return InputChoice(
        value=f"set-{input_set.pk}",
        name=input_set.name,
        summary=input_set.summary,
        directory=input_set.directory,
        input_set=input_set,
    )


def prompt_choice(prompt_id: str, inputs: dict) -> InputChoice:
    """An earlier prompt's folder, named after the folder (what it was called on the command line)."""
    info = inputs.get("info") or {}
    main = info.get("color") or info.get("image") or {}
    parts = []
    if main.get("frames"):
        parts.append(plural(main["frames"], "frame"))
    if main.get("width") and main.get("height"):
        parts.append(f"{main['width']}×{main['height']}")
    parts.append(", ".join(sorted(inputs.get("videos") or {})) or "no videos")
    parts.append("from an earlier run")
    directory = inputs["dir"]
    return InputChoice(
        value=f"prompt-{prompt_id}",
        name=os.path.basename(directory.rstrip("/")) or directory,
        summary=" · ".join(parts),
        directory=directory,
    )


def offered_choices(user) -> list[InputChoice]:
    """None, the user's ready input sets (most recent first), then the folders of their earlier
    prompts that are no set (newest first); each folder once, LATEST at most."""
    choices = [NO_INPUTS]
    if user is None:
        return choices
    seen = set()
    for input_set in InputSet.objects.for_user(user).ready().order_by("-updated_at", "-id")[:LATEST]:
        seen.add(input_set.directory)
        choices.append(set_choice(input_set))
    prompts = Prompt.objects.for_user(user).with_inputs().order_by("-created_at")
    for prompt_id, inputs in prompts.values_list("id", "inputs")[:PROMPTS_READ]:
        if len(choices) > LATEST:
            break
        if inputs.get("dir") and inputs["dir"] not in seen:
            seen.add(inputs["dir"])
            choices.append(prompt_choice(prompt_id, inputs))
    return choices


def find_choice(user, value: str) -> InputChoice | None:
    """The choice ``value`` names if ``user`` may use it; None for anything else, existing or not."""
    if user is None or not isinstance(value, str):
        return None
    if match := _SET_VALUE.fullmatch(value):
        input_set = InputSet.objects.offered_to(user).filter(pk=int(match[1])).first()
        return set_choice(input_set) if input_set else None
    if match := _PROMPT_VALUE.fullmatch(value):
        prompt = Prompt.objects.for_user(user).with_inputs().filter(pk=match[1]).first()
        return prompt_choice(prompt.id, prompt.inputs) if prompt and prompt.inputs.get("dir") else None
    return None


def choice_for_folder(user, directory: str) -> InputChoice | None:
    """The choice of the folder ``directory`` if ``user`` is offered it: their set, else their prompt's."""
    if user is None or not os.path.isabs(directory) or len(directory) > MAX_VALUE_LENGTH or "\0" in directory:
        return None
    input_set = InputSet.objects.offered_to(user).filter(directory=directory).order_by("pending").first()
    if input_set is not None:
        return set_choice(input_set)
    prompt = Prompt.objects.for_user(user).filter(inputs__dir=directory).order_by("-created_at").first()
    return prompt_choice(prompt.id, prompt.inputs) if prompt else None


class InputSetField(forms.ChoiceField):
    """The input set a run starts from; FormInputs fills its choices for the form's user."""

    widget = forms.RadioSelect

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("label", "Input set")
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "Or upload videos below.")
        super().__init__(**kwargs)


class FormInputs:
    """The inputs part of one New run form: its choices, the chosen folder, and its upload."""

    def __init__(self, form: forms.Form, user) -> None:
        self.form, self.user = form, user
        self.upload: InputSet | None = None  # this form's pending upload (sent now, or carried back)
        self.choices = {choice.value: choice for choice in offered_choices(user)}
        current = self._value()
        if current:
            chosen = self._lookup(current)
            if chosen is not None:
                self.choices.setdefault(chosen.value, chosen)
                self._set_value(chosen.value)
                if chosen.uploaded:
                    self.upload = chosen.input_set
        elif not form.is_bound and getattr(form, "profile", None) and form.profile.needs_video:
            # A model that reads a video opens on the latest input set: "None" could only be refused.
            latest = next((choice for choice in self.choices.values() if choice.value), None)
            if latest is not None:
                self._set_value(latest.value)
        self._refresh()

    def _lookup(self, value: str) -> InputChoice | None:
        if value in self.choices:
            return self.choices[value]
        by_folder = next((c for c in self.choices.values() if c.directory and c.directory == value), None)
        return by_folder or find_choice(self.user, value) or choice_for_folder(self.user, value)

    def _value(self) -> str:
        form = self.form
        value = form.data.get(form.add_prefix(FIELD)) if form.is_bound else form.initial.get(FIELD)
        return value if isinstance(value, str) and len(value) <= MAX_VALUE_LENGTH else ""

    def _set_value(self, value: str) -> None:
        """Make ``value`` the form's choice, as the page shows it (a path becomes its choice)."""
        form = self.form
        if form.is_bound:
            form.data = form.data.copy()
            form.data[form.add_prefix(FIELD)] = value
        else:
            form.initial = {**form.initial, FIELD: value}

    def _refresh(self) -> None:
        # The upload first (what this form was sent with), then the offered choices in their order.
        ordered = sorted(self.choices.values(), key=lambda choice: (choice.value != "", not choice.uploaded))
        self.form.fields[FIELD].choices = [(choice.value, choice) for choice in ordered]

    def folder(self, cleaned_data: dict) -> str | None:
        """The input folder the form asks for, or None; files sent with it are stored first.

        Uploads are stored even when other fields have errors, as this user's pending input set,
        which becomes the form's choice: the page sent back keeps them. Unusable files are the
        uploads field's error (and nothing of them is kept).
        """
        files = cleaned_data.get(UPLOADS)
        if files:
            try:
                upload = input_set_upload(files=files, owner=self.user)
            except UploadError as exc:
                self.form.add_error(UPLOADS, str(exc))
                return None
            if self.upload is not None:
                input_set_discard(input_set=self.upload)  # replaced by the new files
                self.choices.pop(f"set-{self.upload.pk}", None)
            self.upload = upload
            choice = set_choice(upload)
            self.choices[choice.value] = choice
            self._set_value(choice.value)
            self._refresh()
            return upload.directory
        chosen = self.choices.get(cleaned_data.get(FIELD) or "")
        return chosen.directory if chosen and chosen.value else None

    def used(self) -> bool:
        """A run is to start from the form's inputs: its upload becomes an input set like any other.

        False when the upload was deleted meanwhile (left unused past its lifetime).
        """
        if self.upload is None:
            return True
        return self.upload.keep() or InputSet.objects.filter(pk=self.upload.pk).exists()
