"""The webhooks page's form: it validates input and nothing else (webhooks.services writes)."""

from django import forms

from webhooks.models import EVENTS, SUBJECT_MAX_LENGTH, WebhookEndpoint


class WebhookForm(forms.Form):
    url = forms.CharField(
        label="URL",
        max_length=WebhookEndpoint._meta.get_field("url").max_length,
        help_text="An http:// or https:// URL on a public address; it gets each event as a signed JSON POST.",
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/hooks/cosmos"}),
    )
    events = forms.MultipleChoiceField(
        choices=[(event, event) for event in EVENTS],
        initial=list(EVENTS),
        widget=forms.CheckboxSelectMultiple,
        help_text="The events it gets.",
    )
    scope = forms.CharField(
        required=False,
        max_length=SUBJECT_MAX_LENGTH,
        label="Only about",
        help_text="A run (rs_…) or sweep (sw_…) id: only its events. Blank: all of yours.",
    )
