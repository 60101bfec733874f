"""Cosmos-Transfer1's progress, read from its log: anchored lines, and clips interpolated by time.

Transfer1 prints nothing while it samples, so the diffusion span of each clip is estimated from
the expected step time (see Transfer1Progress).
"""

from dataclasses import dataclass, field

from cosmos.logs import LogRecord, ProgressBar
from cosmos.profiles.transfer1_spec import clip_count
from cosmos.progress import LogProgress
from cosmos.stages import Stage

# The generation span (all clips) sits between these job percentages.
CLIPS_START, CLIPS_END = 32.0, 92.0
# Within one clip's share: latent encoding, then diffusion, then VAE decode.
DIFFUSION_START, DIFFUSION_END = 0.05, 0.90
# Never show a silent diffusion as more than this fraction done.
INTERPOLATION_CAP = 0.97
# Extra diffusion cost per additional control, as measured in multi-control runs (×1.3–1.6 for four).
PER_EXTRA_CONTROL = 0.15

# (message prefix, stage, job percent, what to tell the user)
ANCHORS: tuple[tuple[str, Stage, float, str], ...] = (
    ("control_inputs:", Stage.STARTING, 0.5, "Reading the spec"),
    ("final args:", Stage.STARTING, 1, "Cosmos-Transfer1 started"),
    ("Start creating base model", Stage.LOADING_MODELS, 2, "Building the 7B base model"),
    ("Loading base model checkpoint", Stage.LOADING_MODELS, 4, "Loading the base model checkpoint"),
    ("Complete loading base model checkpoint", Stage.LOADING_MODELS, 12, "Base model loaded"),
    ("Done creating base model", Stage.LOADING_MODELS, 14, "Base model ready"),
    ("Start creating ctrlnet model", Stage.LOADING_MODELS, 15, "Building the control networks"),
    ("Done creating ctrlnet model", Stage.LOADING_MODELS, 18, "Control networks built"),
    ("Loading ctrl model from ckpt_path", Stage.LOADING_MODELS, 20, "Loading control checkpoints"),
    ("running preprocessor", Stage.PREPROCESSING, 22, "Preparing control videos"),
    ("no input_control provided for", Stage.PREPROCESSING, 22, "Generating a control video from the input"),
    ("Running batch generation", Stage.PREPROCESSING, 25, "Control videos ready"),
    ("Running guardrail checks on all prompts", Stage.SAFETY_CHECK, 26, "Checking the prompt (guardrail)"),
    ("Starting T5 compute", Stage.ENCODING_PROMPT, 27, "Encoding the prompt (T5)"),
    ("Completed T5 compute", Stage.ENCODING_PROMPT, 28, "Prompt encoded"),
    ("Run generation", Stage.GENERATING, 30, "Preparing the clips"),
    ("Completed data augmentation", Stage.GENERATING, 31, "Clips prepared"),
    ("Finish generation", Stage.SAFETY_CHECK, 93, "Generation finished"),
    (
        "Run guardrail on generated videos",
        Stage.SAFETY_CHECK,
        95,
        "Checking the video (guardrail, face blur)",
    ),
    ("Saved video to", Stage.SAVING, 99, "Video saved"),
    ("Saved prompt to", Stage.SAVING, 100, "Done"),
)

# Lines whose first sighting marks a phase boundary, for the run's timing metrics.
MARKS = {
    "final args:": "started",
    "running preprocessor": "item_started",
    "Run generation": "generation_started",
    "Finish generation": "generation_finished",
    "Saved video to": "saved",
}


@dataclass
class Transfer1Progress(LogProgress):
    """Feed it the job's output as it arrives; it returns the progress whenever that changes.

    ``step_seconds`` is the expected duration of one diffusion step with a single control on
    this node (learned from earlier runs, or the reference estimate scaled by the node's speed).
    """

    frames: int
    num_steps: int
    step_seconds: float
    controls: int = 1
    distilled: bool = False
    stage: Stage = Stage.STARTING
    percent: float = 0.0
    message: str = "Starting"
    saved_video: str | None = None
    marks: dict[str, float] = field(default_factory=dict)
    diffusion_seconds: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.clips = clip_count(self.frames)
        self._clip = 0
        self._diffusion_started: float | None = None
        self._start_reading()

    # --- public API ------------------------------------------------------------------------------

    @property
    def effective_steps(self) -> int:
        return 1 if self.distilled else self.num_steps

    @property
    def control_factor(self) -> float:
        return 1 + PER_EXTRA_CONTROL * max(0, self.controls - 1)

    @property
    def expected_diffusion_seconds(self) -> float:
        return self.effective_steps * self.step_seconds * self.control_factor

    def measured_step_seconds(self) -> float | None:
        """Seconds per diffusion step with one control, as this job really ran (for later estimates)."""
        if not self.diffusion_seconds:
            return None
        mean = sum(self.diffusion_seconds) / len(self.diffusion_seconds)
        return mean / (self.effective_steps * self.control_factor)

    # --- internals ---------------------------------------------------------------------------------

    def _clip_share(self) -> float:
        return (CLIPS_END - CLIPS_START) / self.clips

    def _clip_start(self, clip: int) -> float:
        return CLIPS_START + (clip - 1) * self._clip_share()

    def _clip_label(self) -> str:
        return f"Clip {self._clip}/{self.clips}"

    def _handle(self, event, now: float) -> None:
        if isinstance(event, ProgressBar):
            if event.total > 0 and not event.description:
                # The clip bar is the authority on the clip count (long inputs, capped frames).
                self.clips = event.total
                self._advance(
                    self.stage, self._clip_start(event.n + 1) if event.n else self.percent, self.message
                )
            return
        if isinstance(event, LogRecord):
            self._on_record(event, now)

    def _on_record(self, record: LogRecord, now: float) -> None:
        message = record.message
        for prefix, mark in MARKS.items():
            if message.startswith(prefix):
                self.marks.setdefault(mark, now)
        if message.startswith("Saved video to "):
            self.saved_video = message.removeprefix("Saved video to ").strip()
        if self._on_clip_record(message, now):
            return
        for prefix, stage, percent, text in ANCHORS:
            if message.startswith(prefix):
                self._advance(stage, percent, text)
                return

    def _on_clip_record(self, message: str, now: float) -> bool:
        if message == "Starting latent encoding":
            self._clip = min(self._clip + 1, self.clips)
            self._advance(Stage.GENERATING, self._clip_start(self._clip), f"{self._clip_label()}: encoding")
        elif message == "Starting diffusion sampling":
            self._diffusion_started = now
            steps = self.effective_steps
            self._advance(
                Stage.GENERATING,
                self._clip_start(self._clip) + DIFFUSION_START * self._clip_share(),
                f"{self._clip_label()}: diffusion, {steps} step{'s' if steps != 1 else ''}",
            )
        elif message == "Completed diffusion sampling":
            if self._diffusion_started is not None:
                self.diffusion_seconds.append(now - self._diffusion_started)
            self._diffusion_started = None
            self._advance(
                Stage.GENERATING,
                self._clip_start(self._clip) + DIFFUSION_END * self._clip_share(),
                f"{self._clip_label()}: diffusion done",
            )
        elif message == "Starting VAE decode":
            self._advance(Stage.GENERATING, self.percent, f"{self._clip_label()}: decoding")
        elif message == "Completed VAE decode":
            self._advance(
                Stage.GENERATING, self._clip_start(self._clip + 1), f"{self._clip_label()}: decoded"
            )
        else:
            return False
        return True

    def _catch_up(self, now: float) -> None:
        """Advance the silent diffusion span by the time that has passed."""
        if self._diffusion_started is None or self.expected_diffusion_seconds <= 0:
            return
        done = min(INTERPOLATION_CAP, (now - self._diffusion_started) / self.expected_diffusion_seconds)
        span = DIFFUSION_END - DIFFUSION_START
        target = self._clip_start(self._clip) + (DIFFUSION_START + span * done) * self._clip_share()
        self.percent = max(self.percent, target)
