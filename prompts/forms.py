"""Forms of the admin's curation pages: they validate input and nothing else (services write)."""

from django import forms
from django.conf import settings

from prompts.services import EXPORT_FORMATS, tags_parse
from runs.cosmos import transfer1
from runs.cosmos.params import Param
from runs.forms import node_choices


def _parameter_field(param: Param) -> forms.Field:
    """An optional field for one model parameter: blank keeps each prompt's own value."""
    label = param.name.replace("_", " ").capitalize()
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
        for hint in transfer1.HINTS:
            self.fields[f"weight_{hint}"] = forms.FloatField(
                label=f"{hint} control weight",
                required=False,
                min_value=0,
                max_value=1,
                widget=forms.NumberInput(attrs={"step": "0.05", "placeholder": "keep each prompt's"}),
                help_text="0 to 1; 0 turns the control off.",
            )
        for param in transfer1.PARAMETERS:
            self.fields[param.name] = _parameter_field(param)

    @property
    def weight_fields(self):
        return [self[f"weight_{hint}"] for hint in transfer1.HINTS]

    @property
    def parameter_fields(self):
        return [self[param.name] for param in transfer1.PARAMETERS]

    def parameters(self) -> dict:
        """The parameters given (to override each prompt's)."""
        return {
            param.name: self.cleaned_data[param.name]
            for param in transfer1.PARAMETERS
            if self.cleaned_data.get(param.name) not in (None, "")
        }

    def weights(self) -> dict[str, float]:
        return {
            hint: self.cleaned_data[f"weight_{hint}"]
            for hint in transfer1.HINTS
            if self.cleaned_data.get(f"weight_{hint}") is not None
        }


class TagsForm(forms.Form):
    tags = forms.CharField(
        help_text='Separate tags with commas. Tags are letters, digits and "-": "Sci Fi" becomes sci-fi.'
    )

    def clean_tags(self) -> list[str]:
        names = tags_parse(self.cleaned_data["tags"])
        if not names:
            raise forms.ValidationError("Give at least one tag.")
        return names


class ImportForm(forms.Form):
    file = forms.FileField(help_text="An export of this admin: .json, .jsonl or .csv.")
    format = forms.ChoiceField(
        choices=[("", "From the file name"), *((name, name.upper()) for name in EXPORT_FORMATS)],
        required=False,
    )
