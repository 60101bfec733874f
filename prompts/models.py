import re
import unicodedata
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Length, Trim
from django.db.models.lookups import GreaterThan
from django.utils import timezone

from cosmos_site.ids import new_prompt_id
from cosmos_site.model_types import ModelType, default_model_type
from cosmos_site.querysets import OwnedQuerySet
from cosmos_site.validators import first_unstorable, validate_storable_text
from prompts.naming import generate_prompt_name
from prompts.search import RANK_WINDOW, FTS5Column, search

TAG_MAX_LENGTH = 50


def normalize_tag_name(name: str) -> str:
    """The canonical form of a tag: lower case, words joined by "-", letters and digits only.

    "Sci Fi", "sci_fi" and " SCI-FI " are all "sci-fi", so one idea is one tag.
    """
    words = re.findall(r"[^\W_]+", unicodedata.normalize("NFC", str(name)).lower())
    return "-".join(words)[:TAG_MAX_LENGTH].strip("-")


class Tag(models.Model):
    """A label for curating prompts ("favourites", "client-x", "night"), searchable and filterable."""

    name = models.CharField(max_length=TAG_MAX_LENGTH, unique=True, validators=[validate_storable_text])

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.name = normalize_tag_name(self.name)
        if not self.name:
            raise ValidationError({"name": "A tag needs at least one letter or digit."})


class PromptQuerySet(OwnedQuerySet):
    def with_inputs(self) -> "PromptQuerySet":
        """Prompts whose inputs name an input folder (the ones a new run can reuse)."""
        return self.filter(inputs__has_key="dir")

    def tagged(self, name: str) -> "PromptQuerySet":
        return self.filter(tags__name=normalize_tag_name(name))

    def search(
        self, text: str, *, rank_window: int | None = RANK_WINDOW, highlight: bool = True
    ) -> "PromptQuerySet":
        """Prompts matching ``text`` (words, "phrases", prefix*, -excluded), best first.

        Each result has ``search_rank`` (higher is better), and with ``highlight``
        ``search_snippet`` and ``search_name``: safe HTML, the text escaped and matches in
        <mark>. Call it after other filters; see prompts/search.py for the rank window.
        """
        return search(self, text, rank_window=rank_window, highlight=highlight)


class Prompt(models.Model):
    """What to generate: the text, the inputs it applies to, and the model settings.

    A prompt is reused by every run made from it (`cosmos_run --like`). An enhanced prompt keeps
    its original as ``parent``.
    """

    id = models.CharField(primary_key=True, max_length=20, default=new_prompt_id, editable=False)
    name = models.CharField(
        max_length=120,
        blank=True,
        validators=[validate_storable_text],
        help_text="Generated from the text when left blank.",
    )
    model_type = models.CharField(max_length=32, choices=ModelType.choices, default=default_model_type)
    prompt_text = models.TextField(validators=[validate_storable_text])
    negative_prompt = models.TextField(
        blank=True,
        validators=[validate_storable_text],
        help_text="Blank uses the model's default negative prompt.",
    )
    inputs = models.JSONField(
        default=dict, blank=True, help_text="Input videos by modality, and their metadata."
    )
    parameters = models.JSONField(default=dict, blank=True, help_text="Model parameters and control weights.")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="prompts")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="prompts"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = PromptQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Newest first, on its own and per model (prompt lists, "most recent inputs").
            models.Index(fields=["-created_at"], name="prompt_created_idx"),
            models.Index(fields=["model_type", "-created_at"], name="prompt_model_created_idx"),
            models.Index(fields=["owner", "-created_at"], name="prompt_owner_created_idx"),
        ]
        constraints = [
            # A prompt of only spaces is as useless to the model as an empty one.
            models.CheckConstraint(
                condition=GreaterThan(Length(Trim("prompt_text")), 0), name="prompt_text_not_blank"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name or self.id}"

    def to_dict(self, *, detail: bool = False, tags: bool = False) -> dict[str, Any]:
        """The prompt as JSON-safe values: its id, name, model, texts and creation time (the API's lists).

        With ``detail`` (cosmos_show --json, the export) also its inputs, parameters, parent and
        owner (None when it has none); with ``tags`` its tag names in order (cosmos_search --json,
        the export: prefetch the tags for many). Its runs are the caller's to add.
        """
        data: dict[str, Any] = {
            "prompt_id": self.id,
            "name": self.name,
            "model_type": self.model_type,
            "prompt_text": self.prompt_text,
            "negative_prompt": self.negative_prompt,
        }
        if detail:
            data.update(
                inputs=self.inputs,
                parameters=self.parameters,
                parent_id=self.parent_id,
                owner=self.owner.get_username() if self.owner else None,
            )
        if tags:
            data["tags"] = sorted(tag.name for tag in self.tags.all())
        data["created_at"] = self.created_at.isoformat()
        return data

    def clean(self) -> None:
        self.prompt_text = (self.prompt_text or "").strip()
        if not self.prompt_text:
            raise ValidationError({"prompt_text": "The prompt text is blank: describe what to generate."})
        self.negative_prompt = (self.negative_prompt or "").strip()
        self.name = (self.name or "").strip() or generate_prompt_name(self.prompt_text)
        for field in ("inputs", "parameters"):
            if found := first_unstorable(getattr(self, field)):
                where, reason = found
                raise ValidationError({field: f"{where or field} cannot be stored: {reason}."})


class PromptSearchDocument(models.Model):
    """A prompt's row in the SQLite full-text index, the FTS5 table ``prompts_prompt_fts``.

    Read-only: migration 0003 creates the table on SQLite only, with triggers that keep it in
    step with prompts, their tags and tag names. Queries use it through
    ``PromptQuerySet.search``; on PostgreSQL the index is a column of the prompts table instead.
    """

    prompt = models.OneToOneField(
        Prompt,
        primary_key=True,
        on_delete=models.DO_NOTHING,
        db_column="prompt_id",
        db_constraint=False,
        related_name="search_document",
    )
    rowid = models.IntegerField(db_column="rowid")
    document = FTS5Column(db_column="prompts_prompt_fts")
    rank = models.FloatField(db_column="rank")

    class Meta:
        managed = False
        db_table = "prompts_prompt_fts"

    def __str__(self) -> str:
        return f"search document of {self.prompt_id}"
