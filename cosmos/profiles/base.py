"""What every Cosmos model profile provides, so the runner, scheduler and planner stay model-blind.

A profile knows one model's parameters (with defaults that follow the inputs), which input
files it reads, how its job folder and command line look, how to read its progress from the
log, which files it leaves for each run and what else the log tells (an answer, a prompt). Facts
come from reference/cosmos-models.md; each profile module names its section.
"""

import json
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from cosmos.failures import OOM_HINT, Failure, classify_failure, oom_hint
from cosmos.params import Param, ParameterError, clean_parameters

# torchrun fills these for its workers; a model launched with plain python needs them set.
SINGLE_PROCESS_ENV = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1"}

# A run's result in its folder: a video, or an image (Cosmos 3's text2image and image2image).
MEDIA_OUTPUTS = ("output.mp4", "output.jpg")


def json_document(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def json_lines(values: list[Any]) -> str:
    """JSONL: one object per line, user text kept as written (no ASCII escapes)."""
    return "".join(json.dumps(value, ensure_ascii=False) + "\n" for value in values)


@dataclass(frozen=True)
class JobItem:
    """One run's share of a job: its text and its staged input files on the node."""

    run_id: str
    prompt: str
    negative_prompt: str
    staged: dict[str, str]  # modality → path on the node
    # The run's own settings, for models that write one spec per run (None: the job's shared ones).
    parameters: dict[str, Any] | None = None


@dataclass(frozen=True)
class JobFiles:
    """What a job needs on the node: files written into its folder, the model's argv and environment."""

    files: dict[str, str]  # name inside the job folder → text
    argv: list[str]  # the model's script and arguments (the launcher adds torchrun or python)
    env: dict[str, str] = field(default_factory=dict)
    # Variables a container takes from the node's own environment (a token: never on a command line).
    inherited_env: tuple[str, ...] = ()
    spec: Any = None  # what execution_config records as the run's spec


@dataclass(frozen=True)
class VideoFacts:
    """What the planner knows about the input video, for defaults that follow it."""

    frames: int
    fps: float
    width: int
    height: int


@dataclass(frozen=True)
class ModelRequirements:
    """What a node needs to run a model, for its preflight and `cosmos_node download`.

    Figures come from the model's repository or reference/cosmos-models.md (the profile says which).
    """

    # Disk the model's checkpoints take once downloaded (the node's cache or checkpoint folder).
    checkpoint_gb: float = 0.0
    # GPU memory one GPU needs as the model is started by default, and with every offload option on.
    gpu_memory_gb: float = 0.0
    offloaded_gpu_memory_gb: float = 0.0
    # The model's boolean parameters that lower its GPU memory (turned on by the preflight when needed).
    offload_parameters: tuple[str, ...] = ()
    # Hugging Face repositories the node's token must be able to read (gated: licence to accept).
    gated_repos: tuple[str, ...] = ()
    # Hugging Face repositories `cosmos_node download` fetches into the node's cache ahead of a run.
    download_repos: tuple[str, ...] = ()
    # Oldest NVIDIA driver the model's image works with ("" when the repository states none).
    min_driver: str = ""
    # Where the checkpoints go: False, the node's Hugging Face cache (HF_HOME, downloaded at run time);
    # True, the node's checkpoint folder as <org>/<name> per repository (Transfer1's --checkpoint_dir).
    in_checkpoint_dir: bool = False


class ModelProfile:
    name: str = ""
    label: str = ""
    script: str = ""
    parameters: tuple[Param, ...] = ()
    hints: tuple[str, ...] = ()  # controls that take a weight
    batchable = False
    torchrun = True  # False: started with plain python (vLLM-based tools)
    produces_media = True  # each run gets a video or an image (MEDIA_OUTPUTS), verified on download
    needs_video = True  # False: text only (text2world)
    prompt_required = True
    default_prompt = ""  # the model's own prompt when none is given (prompt_required False)
    # Expected seconds of one unit of work (a diffusion step) on one H100, for progress and ETAs.
    reference_step_seconds = 12.0
    # The input folder's modalities this model can read, beyond the input video.
    optional_inputs: tuple[str, ...] = ()
    # Files of the job folder copied into each run's folder with its outputs (when they exist).
    kept_files: tuple[str, ...] = ("spec.json", "batch.jsonl")
    # What a node needs for this model (preflight, downloads); each profile states its own.
    requirements = ModelRequirements()

    # --- planning ----------------------------------------------------------------------------------

    def requirements_for(self, parameters: dict[str, Any]) -> ModelRequirements:
        """What a node needs for a run with these settings (profiles whose checkpoint varies override it)."""
        return self.requirements

    def default_controls(self, modalities: set[str]) -> dict[str, float]:
        return {}

    def wants_controls(self, values: dict[str, Any], video: "VideoFacts | None") -> bool:
        """Whether a run with these settings reads control weights (defaults apply only then)."""
        return True

    def check_inputs(self, parameters: dict[str, Any], modalities: set[str]) -> None:
        """ParameterError when the input folder lacks a file these settings need."""

    def carried_over(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """An earlier run's settings as a new run like it starts from (without those its inputs decided)."""
        return dict(parameters)

    def notices(self, given: dict[str, Any], parameters: dict[str, Any]) -> list[str]:
        """What a run should say about how its settings were read (a value rounded, say)."""
        return []

    def resolve(
        self, values: dict[str, Any], controls: dict[str, Any], *, video: VideoFacts | None
    ) -> dict[str, Any]:
        """Validated parameters with defaults (some from ``video``); ParameterError names the bad one."""
        if controls:
            hint = next(iter(controls))
            raise ParameterError(hint, f"{self.label} takes no control weights (got {hint})")
        return clean_parameters(self.parameters, self._smart_defaults(values, video))

    def _smart_defaults(self, values: dict[str, Any], video: VideoFacts | None) -> dict[str, Any]:
        return dict(values)

    def expected_output(self, parameters: dict[str, Any], video: VideoFacts | None) -> dict[str, Any]:
        """What the run will produce (frames, size, fps), shown before it starts; {} when unknown."""
        return {}

    def gpus(self, parameters: dict[str, Any]) -> int:
        return int(parameters.get("num_gpus", 1))

    def launched_by_torchrun(self, parameters: dict[str, Any]) -> bool:
        """torchrun (one process per GPU) or plain python starts the model's script."""
        return self.torchrun

    def needed_inputs(self, parameters: dict[str, Any], available: set[str]) -> set[str]:
        """Modalities of the input folder to stage: the input video and the videos of controls that are on."""
        if not self.needs_video:
            return set()
        return {"color"} | (set(parameters.get("controls", {})) & available)

    def prepare_inputs(
        self, parameters: dict[str, Any], files: dict[str, Path], *, cache_dir: Path
    ) -> dict[str, Path]:
        """Local files to stage, derived from the chosen ones where the model needs another form.

        Derived files are kept under ``cache_dir`` (this machine's cache folder).
        """
        return files

    def batch_key(self, *, parameters: dict[str, Any], negative_prompt: str) -> str:
        """Runs with equal keys can share one invocation (only their prompts and inputs differ)."""
        return json.dumps([self.name, parameters, negative_prompt], sort_keys=True)

    # --- the job -----------------------------------------------------------------------------------

    def build_job(
        self,
        *,
        items: list[JobItem],
        parameters: dict[str, Any],
        job_dir: PurePosixPath,
        checkpoint_dir: PurePosixPath | str,
    ) -> JobFiles:
        raise NotImplementedError

    def progress(self, *, frames: int, parameters: dict[str, Any], step_seconds: float):
        """A parser with feed/tick/finish/snapshot/marks/measured_step_seconds (cosmos/progress.py)."""
        raise NotImplementedError

    def starts_item(self, message: str) -> bool:
        """Whether a log message starts the next run of a batch job."""
        return False

    def blamed_item(self, log_text: str, names: list[str]) -> int | None:
        """The run (index in ``names``) that a batch's failure before any video names, if one is named."""
        return None

    # --- results -----------------------------------------------------------------------------------

    def kept_files_of(self, *, run_id: str, index: int | None) -> dict[str, str]:
        """Files of the job folder kept with a run's outputs: path in the job folder → name in the run's."""
        return {name: name for name in self.kept_files}

    def outcome_file(self, *, run_id: str, index: int | None) -> str | None:
        """A file under out/ where the model writes how this run's sample ended (None: only the log says)."""
        return None

    def failure_from_outcome(self, outcome: dict[str, Any]) -> Failure | None:
        """The failure an outcome file reports (None: it reports success)."""
        return None

    def output_files(self, names: set[str], *, run_id: str, index: int | None) -> dict[str, str]:
        """This run's files among the job's outputs: path under out/ → name in the run's folder.

        Every run's folder uses the same names (output.mp4 or output.jpg, output.txt…) whatever the model.
        """
        raise NotImplementedError

    def produced(self, names: set[str], *, run_id: str, index: int | None, log_text: str) -> bool:
        """Whether the job left this run's result: its video or its image."""
        mine = self.output_files(names, run_id=run_id, index=index).values()
        return any(name in MEDIA_OUTPUTS for name in mine)

    def results(self, log_text: str) -> dict[str, Any]:
        """Results the model prints rather than writes (an answer, a rewritten prompt).

        A "files" entry maps file names to text written into the run's folder.
        """
        return {}

    def classify(self, *, exit_code: int | None, log_text: str, produced: bool) -> Failure | None:
        return classify_failure(
            exit_code=exit_code, log_text=log_text, produced_video=produced, model=self.name
        )

    def with_own_hint(self, failure: Failure) -> Failure:
        """``failure`` with advice in this model's settings where the log's rule gives everyone's:
        running out of memory, a Reason run is told of its context length, not of controls it lacks."""
        if failure.kind != "oom" or failure.hint != OOM_HINT:
            return failure
        names = {param.name for param in self.parameters}
        levers = [
            lever
            for lever, applies in (
                ("turn the offload options on", any(name.startswith("offload_") for name in names)),
                ("use fewer controls", bool(self.hints)),
                ("lower the max model length", "max_model_len" in names),
                ("lower the total pixels", "total_pixels" in names),
                ("choose the smaller size", "size" in names),
            )
            if applies
        ]
        return replace(failure, hint=oom_hint(levers))

    def __repr__(self) -> str:
        return f"<ModelProfile {self.name}>"


class AnswerProfile(ModelProfile):
    """A model whose result is text it prints (Reason1, Reason2): an answer, and its reasoning if any.

    ``read_answer(log_text)`` gives {"answer": …, "reasoning": …} ({} when none was printed).
    """

    produces_media = False

    @staticmethod
    def read_answer(log_text: str) -> dict[str, str]:
        raise NotImplementedError

    def output_files(self, names, *, run_id, index):
        return {}

    def produced(self, names, *, run_id, index, log_text):
        return bool(self.read_answer(log_text).get("answer"))

    def results(self, log_text: str) -> dict[str, Any]:
        parsed = self.read_answer(log_text)
        if not parsed:
            return {}
        text = parsed["answer"]
        if parsed.get("reasoning"):
            text = f"{parsed['answer']}\n\nReasoning:\n{parsed['reasoning']}"
        return {**parsed, "files": {"answer.txt": text + "\n"}}
