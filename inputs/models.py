"""Prepared input folders, registered by name to start runs from."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from cosmos.humanize import plural
from cosmos_site.querysets import OwnedQuerySet


class InputSetQuerySet(OwnedQuerySet):
    def ready(self) -> "InputSetQuerySet":
        """Sets to start runs from: not an upload still waiting for its form to be corrected."""
        return self.filter(pending=False)

    def offered_to(self, user) -> "InputSetQuerySet":
        """What ``user`` may pick or see: the ready sets they may see (staff: all), and their own uploads."""
        return self.for_user(user).ready() | self.filter(owner=user, pending=True)

    def pending_before(self, moment) -> "InputSetQuerySet":
        """Uploads kept for a form that nobody sent again since ``moment``: to delete."""
        return self.filter(pending=True, created_at__lt=moment)

    def name_clash(self, *, name: str, directory: str) -> "InputSet | None":
        """The input set already registered under ``name`` for another folder, if any (names are unique)."""
        return self.filter(name=name).exclude(directory=directory).first()


class InputSet(models.Model):
    """A prepared input folder (color.mp4 and control videos) registered by name, to start runs from.

    cosmos_prepare writes the folder and registers it; the files stay the truth, and these fields
    are what they held when registered. One row per folder: preparing the same folder again
    refreshes its row, which becomes the most recent again (``updated_at``).
    """

    name = models.CharField(max_length=200, unique=True)
    directory = models.CharField(max_length=1000, unique=True, help_text="The folder holding color.mp4.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="input_sets"
    )
    frames = models.PositiveIntegerField()
    fps = models.FloatField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    modalities = models.JSONField(default=list, help_text='The videos present: "color", "depth", "seg"…')
    thumbnail = models.CharField(max_length=1000, blank=True, help_text="A JPEG of color.mp4's middle frame.")
    metadata = models.JSONField(default=dict, blank=True, help_text="The folder's metadata.json.")
    pending = models.BooleanField(
        default=False,
        help_text="An upload from the new-run page that no run uses yet: kept for its owner alone while the "
        "form is corrected, and deleted a day later unless a run starts from it.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = InputSetQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-id"]
        get_latest_by = "updated_at"
        indexes = [
            # The input choices of the new-run page: a user's sets, most recent first.
            models.Index(fields=["owner", "-updated_at"], name="inputset_owner_updated_idx"),
            # The same for staff, who see everyone's.
            models.Index(fields=["-updated_at"], name="inputset_updated_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def resolution(self) -> str:
        return f"{self.width}×{self.height}"

    @property
    def summary(self) -> str:
        """What a choice of inputs says under the name: length, size and videos."""
        return f"{plural(self.frames, 'frame')} · {self.resolution} · {', '.join(self.modalities)}"

    def keep(self) -> bool:
        """A pending upload becomes an input set like any other (a run starts from it); False if it is
        gone or was kept already."""
        pending = InputSet.objects.filter(pk=self.pk, pending=True)
        kept = pending.update(pending=False, updated_at=timezone.now())
        if kept:
            self.pending = False
        return bool(kept)
