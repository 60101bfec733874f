"""The export form of the export page and the admin's "Export as dataset" action: input checks only."""

from typing import Any

from django import forms

from cosmos.humanize import byte_size, parse_byte_size
from runs.datasets.export import DEFAULT_SHARD_BYTES, ExportOptions
from runs.datasets.selection import FILTERS, SelectionError, selection_clean

# Filters the page has no visible field for, taken as hidden fields (a sweep page's export button
# posts its sweep id): a filter added to FILTERS works here with no change. Lists of run ids come
# from the admin only.
NOT_FROM_PAGES = ("run_ids",)


class ExportOptionsForm(forms.Form):
    """How the chosen runs are written (the admin's action chose its runs already)."""

    with_controls = forms.BooleanField(
        required=False, label="Control and input videos", help_text="Add each run's control and input videos."
    )
    shard_size = forms.CharField(
        initial=byte_size(DEFAULT_SHARD_BYTES).replace(" ", ""),
        max_length=20,
        help_text="Largest shard file, such as 500MB or 2GiB.",
    )
    shard_samples = forms.IntegerField(
        required=False, min_value=1, label="Samples per shard", help_text="Blank: as many as fit the size."
    )

    def clean_shard_size(self) -> int:
        try:
            return parse_byte_size(self.cleaned_data["shard_size"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)[:1].upper() + str(exc)[1:] + ".") from None

    @property
    def options(self) -> ExportOptions:
        data = self.cleaned_data
        return ExportOptions(
            with_controls=data["with_controls"],
            shard_bytes=data["shard_size"],
            shard_samples=data["shard_samples"],
        )


class DatasetExportForm(ExportOptionsForm):
    """Which runs (the selection's filters, each a field) and how to write them."""

    starred = forms.BooleanField(required=False, label="Starred only")
    min_rating = forms.TypedChoiceField(
        required=False,
        label="Rating",
        choices=[("", "Any rating"), *((str(stars), f"{stars}★ or more") for stars in (5, 4, 3, 2, 1))],
        coerce=int,
        empty_value=None,
    )
    tag = forms.CharField(required=False, max_length=50, help_text="Only runs whose prompt has this tag.")
    query = forms.CharField(
        required=False, max_length=500, label="Search", help_text='Words of the prompt, "a phrase", -not.'
    )
    field_order = ["starred", "min_rating", "tag", "query", "with_controls", "shard_size", "shard_samples"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in FILTERS:
            if name not in self.fields and name not in NOT_FROM_PAGES:
                self.fields[name] = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)
        self.selection_fields = [name for name in FILTERS if name in self.fields]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        try:
            self.selection = selection_clean({name: data.get(name) for name in self.selection_fields})
        except SelectionError as exc:
            if exc.field in self.fields and not self.fields[exc.field].widget.is_hidden:
                self.add_error(exc.field, exc.reason[:1].upper() + exc.reason[1:] + ".")
            else:
                self.add_error(None, str(exc)[:1].upper() + str(exc)[1:] + ".")
        return data
