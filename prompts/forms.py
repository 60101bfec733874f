"""Forms of the admin's curation pages: they validate input and nothing else (services write)."""

from django import forms

from prompts.services import EXPORT_FORMATS, tags_parse


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
