"""The stages a run goes through, as shown to users and stored in Progress.stage."""

from enum import StrEnum


class Stage(StrEnum):
    QUEUED = "queued"
    UPLOADING = "uploading"
    STARTING = "starting"
    LOADING_MODELS = "loading_models"
    PREPROCESSING = "preprocessing"
    SAFETY_CHECK = "safety_check"
    ENCODING_PROMPT = "encoding_prompt"
    GENERATING = "generating"
    SAVING = "saving"
    DOWNLOADING = "downloading"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()
