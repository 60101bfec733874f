from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Length, Trim
from django.db.models.lookups import GreaterThan
from django.utils import timezone

from cosmos_site.ids import new_prompt_id
from cosmos_site.querysets import OwnedQuerySet
from prompts.naming import generate_prompt_name


class ModelType(models.TextChoices):
    TRANSFER1 = "transfer1", "Cosmos-Transfer1-7B"


class PromptQuerySet(OwnedQuerySet):
    def with_inputs(self) -> "PromptQuerySet":
        """Prompts whose inputs name an input folder (the ones a new run can reuse)."""
        return self.filter(inputs__has_key="dir")


class Prompt(models.Model):
    """What to generate: the text, the inputs it applies to, and the model settings.

    A prompt is reused by every run made from it (`cosmos_run --like`). An enhanced prompt keeps
    its original as ``parent``.
    """

    id = models.CharField(primary_key=True, max_length=20, default=new_prompt_id, editable=False)
    name = models.CharField(max_length=120, blank=True, help_text="Generated from the text when left blank.")
    model_type = models.CharField(max_length=32, choices=ModelType.choices, default=ModelType.TRANSFER1)
    prompt_text = models.TextField()
    negative_prompt = models.TextField(
        blank=True, help_text="Blank uses the model's default negative prompt."
    )
    inputs = models.JSONField(
        default=dict, blank=True, help_text="Input videos by modality, and their metadata."
    )
    parameters = models.JSONField(default=dict, blank=True, help_text="Model parameters and control weights.")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
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

    def clean(self) -> None:
        self.prompt_text = (self.prompt_text or "").strip()
        if not self.prompt_text:
            raise ValidationError({"prompt_text": "The prompt text is blank: describe what to generate."})
        self.negative_prompt = (self.negative_prompt or "").strip()
        self.name = (self.name or "").strip() or generate_prompt_name(self.prompt_text)
