"""Planning a run: a request (the command line's arguments, a form, an API body) resolved and
validated into a RunPlan, with nothing written yet, so bad input is reported before anything is.

Also who may set which priority. run_submit (services/runs.py) writes and queues a plan.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from cosmos.media import InvalidVideo, VideoInfo, probe_input
from cosmos.params import ParameterError
from cosmos.profiles import ModelProfile, UnknownModel, VideoFacts, profile_for
from cosmos_site.model_types import default_model_type
from inputs.folders import InputError, InputSet, input_set_from_json, read_input_dir
from inputs.models import InputSet as RegisteredInputSet
from nodes.models import GpuNode
from prompts.models import Prompt
from prompts.structured import Caption, PromptError, parse_prompt
from runs.models import USER_PRIORITY_MAX, Run, RunStatus
from runs.services.errors import RunRequestError
from runs.services.inputs import inputs_reference_for


@dataclass
class RunPlan:
    """Everything a new run needs, resolved and validated, with nothing written yet."""

    node: GpuNode
    input_set: InputSet | None
    parameters: dict[str, Any]
    profile: ModelProfile = field(default_factory=lambda: profile_for(default_model_type()))
    source_video: str = ""  # a single video to work on (upscaling a run's output), instead of a folder
    source_run: str = ""
    expected: dict[str, Any] = field(default_factory=dict)
    prompt: Prompt | None = None  # an existing prompt to run again, or None to create one
    prompt_text: str = ""
    negative_prompt: str = ""
    name: str = ""
    like: str | None = None
    priority: int = 0
    notices: list[str] = field(default_factory=list)

    def inputs_json(self) -> dict[str, Any]:
        """The inputs as its prompt stores them: the folder's record, or the one video, or none."""
        if self.input_set is not None:
            return self.input_set.to_json()
        if self.source_video:
            return {"source_video": self.source_video, "source_run": self.source_run}
        return {}


class _Like(NamedTuple):
    """What a new run takes from the run or prompt it is like (nothing, when it is like none)."""

    prompt: Prompt | None
    parameters: dict[str, Any]
    node: GpuNode | None
    model: str
    config: dict


def _find_like(like: str, requester: AbstractBaseUser | None) -> _Like:
    """The prompt, parameters, node, model and execution settings of the run or prompt ``like`` names.

    With a ``requester`` (the web, the API), only a run or prompt they may see; the error is the
    same whether or not one of someone else's exists.
    """
    runs, prompts = Run.objects.all(), Prompt.objects.all()
    if requester is not None:
        runs, prompts = runs.for_user(requester), prompts.for_user(requester)
    run = runs.select_related("prompt", "node").filter(pk=like).first()
    if run:
        parameters = run.execution_config.get("parameters") or run.prompt.parameters
        return _Like(run.prompt, parameters, run.node, run.model_type, run.execution_config)
    prompt = prompts.filter(pk=like).first()
    if prompt:
        return _Like(prompt, prompt.parameters, None, prompt.model_type, {})
    if requester is not None:
        raise RunRequestError(f"no run or prompt of yours with the id {like[:40]!r}", field="like")
    raise RunRequestError(
        f"--like {like}: there is no run or prompt with that id (see cosmos_list)", field="like"
    )


def _most_recent_inputs(requester: AbstractBaseUser | None) -> tuple[InputSet, str]:
    """The newest of: the last prepared input set, and the inputs of the last run (the requester's own)."""
    runs, prompts, prepared = Run.objects.all(), Prompt.objects.all(), RegisteredInputSet.objects.ready()
    if requester is not None:
        runs, prompts, prepared = (
            runs.for_user(requester),
            prompts.for_user(requester),
            prepared.for_user(requester),
        )
    latest = (
        runs.select_related("prompt").filter(prompt__inputs__has_key="dir").order_by("-created_at").first()
    )
    prompt = latest.prompt if latest else prompts.with_inputs().order_by("-created_at").first()
    prepared = prepared.order_by("-updated_at", "-id").first()
    used_at = latest.created_at if latest else prompt.created_at if prompt else None
    if prepared is not None and (used_at is None or prepared.updated_at >= used_at):
        return read_input_dir(Path(prepared.directory)), f"input set {prepared.name}"
    if prompt is None:
        raise RunRequestError(
            "no INPUT_DIR given and no earlier run to take inputs from: give a folder holding color.mp4 "
            "(cosmos_prepare RENDER_DIR makes one from frames; cosmos_demo_inputs DIR writes a demo)",
            field="inputs",
        )
    return input_set_from_json(prompt.inputs), f"prompt {prompt.id}"


# The node a run may ask for when it does not mind which.
AUTOMATIC_NODE = "auto"


def _choose_node(name: str | None, like_node: GpuNode | None, profile: ModelProfile) -> GpuNode:
    """The node a run goes to: only one that offers its model (a Docker node with an image for it)."""
    model = profile.name
    if name == AUTOMATIC_NODE:
        from runs.scheduler import least_loaded_node

        node = least_loaded_node(model_type=model)
        if node is None:
            raise RunRequestError(_no_node_offers(profile), field="node")
        return node
    if name:
        node = GpuNode.objects.filter(name=name).first()
        if node is None:
            known = ", ".join(GpuNode.objects.values_list("name", flat=True)) or "none"
            raise RunRequestError(f"unknown node {name!r}; nodes: {known}", field="node")
        if not node.enabled:
            raise RunRequestError(
                f"node {name!r} is disabled; enable it in the admin or choose another", field="node"
            )
        if not node.offers(model):
            raise RunRequestError(
                f"node {name!r} does not offer {profile.label}: give it an image for the model with "
                f"`cosmos_node runtime {name} {model} --image IMAGE`, or choose another node",
                field="node",
            )
        return node
    if like_node and like_node.enabled and like_node.offers(model):
        return like_node
    offering = GpuNode.objects.filter(enabled=True).offering(model)
    node = offering.filter(name=settings.COSMOS_DEFAULT_NODE).first() or offering.order_by("name").first()
    if node is None:
        raise RunRequestError(_no_node_offers(profile), field="node")
    return node


def _no_node_offers(profile: ModelProfile) -> str:
    if not GpuNode.objects.filter(enabled=True).exists():
        return "no enabled GPU node: add one, or enable local-sim in the admin"
    return (
        f"no enabled GPU node offers {profile.label}: give one an image for it with "
        f"`cosmos_node runtime NODE {profile.name} --image IMAGE`"
    )


def node_parameters(node: GpuNode, model: str) -> dict[str, Any]:
    """What a node sets for ``model`` under a run's own parameters: its defaults (a local checkpoint…),
    then what its preflight turned on for its GPUs (offload options), so the run records them."""
    runtime = node.runtime_for(model)
    preflight = runtime.preflight_parameters if runtime is not None else {}
    return {**node.model_defaults.get(model, {}), **preflight}


def _source_video(source: str) -> tuple[str, str]:
    """The video a run works on: a run's output (by run id) or a video file; and the run it came from."""
    run = Run.objects.filter(pk=source).first()
    if run is not None:
        video = run.outputs.get("video")
        if run.status == RunStatus.COMPLETED and not video and run.outputs.get("image"):
            raise RunRequestError(
                f"run {source} made an image, not a video: give a run whose output is a video", field="inputs"
            )
        if run.status != RunStatus.COMPLETED or not video:
            raise RunRequestError(
                f"run {source} has no output video to work on (it is {run.status})", field="inputs"
            )
        return video, run.id
    path = Path(source).expanduser()
    if not _is_file(path):
        raise RunRequestError(
            f"{source}: not a run id or a video or image file; give a completed run's id (rs_…), an .mp4 "
            "or an image",
            field="inputs",
        )
    return str(path.resolve()), ""


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, say
        return False


def _video_facts(info: VideoInfo | None) -> VideoFacts | None:
    if info is None:
        return None
    return VideoFacts(frames=info.frames, fps=info.fps, width=info.width, height=info.height)


def _resolve(
    profile: ModelProfile, base: dict, controls: dict, parameters: dict | None, video: VideoFacts | None
) -> dict[str, Any]:
    try:
        return profile.resolve({**base, **(parameters or {})}, controls, video=video)
    except ParameterError as exc:
        field = f"weight_{exc.name}" if exc.name in profile.hints else exc.name
        raise RunRequestError(str(exc), field=field) from None


class _PlanInputs(NamedTuple):
    """A new run's inputs: a folder, or a single video (and the run it came from), or none."""

    input_set: InputSet | None
    source_video: str
    source_run: str
    notices: list[str]

    @property
    def modalities(self) -> set[str]:
        return {"color"} if self.source_video else self.input_set.modalities if self.input_set else set()


def _read_inputs(
    *,
    input_dir: Path | None,
    source: str | None,
    like_prompt: Prompt | None,
    like_config: dict,
    requester: AbstractBaseUser | None,
) -> _PlanInputs:
    """The input folder (or single video) of a new run, with notices about what was chosen for it."""
    notices: list[str] = []
    if source is None and input_dir is not None and _is_file(Path(input_dir)):
        source = str(input_dir)
    if source is None and input_dir is not None and str(input_dir).startswith("rs_"):
        source = str(input_dir)
    if source is not None:
        video, source_run = _source_video(source)
        return _PlanInputs(None, video, source_run, notices)
    if input_dir is None and like_config.get("source_video"):
        return _PlanInputs(None, like_config["source_video"], like_config.get("source_run", ""), notices)
    try:
        if input_dir is not None:
            return _PlanInputs(read_input_dir(input_dir), "", "", notices)
        if like_prompt is not None:
            return _PlanInputs(input_set_from_json(like_prompt.inputs), "", "", notices)
        input_set, origin = _most_recent_inputs(requester)
    except InputError as exc:
        raise RunRequestError(str(exc), field="inputs") from None
    notices.append(f"No INPUT_DIR given: using the most recent inputs, {input_set.directory} ({origin})")
    return _PlanInputs(input_set, "", "", notices)


def run_plan(
    *,
    prompt_text: str | Caption | None = None,
    input_dir: Path | None = None,
    like: str | None = None,
    name: str = "",
    negative_prompt: str | Caption | None = None,
    weights: dict[str, float] | None = None,
    parameters: dict[str, Any] | None = None,
    node: str | None = None,
    model: str | None = None,
    source: str | None = None,
    priority: int = 0,
    requester: AbstractBaseUser | None = None,
) -> RunPlan:
    """Resolve a request for a run (the command line's arguments, a form, an API body).

    ``prompt_text`` and ``negative_prompt`` are plain text or a structured caption (its JSON text,
    or the object); a caption is planned as its compact JSON (prompts/structured.py).

    ``input_dir`` is an input folder; ``source`` (or an ``input_dir`` that is a video file or a
    run id) is one video to work on, such as a run's output to upscale.

    ``requester`` is who asks through the web or the API: they may name only what is theirs
    (inputs_reference_for, and --like), and a priority within their range. The command line
    passes none: whoever runs it already has the shell.
    """
    found = _find_like(like, requester) if like else _Like(None, {}, None, "", {})
    if requester is not None:
        input_dir, source = _requester_may_use(input_dir, source, priority, requester)
    profile = _profile_of(model or found.model or default_model_type())
    if found.model and profile.name != found.model:
        found = found._replace(parameters={}, config={})  # another model's settings do not carry over
    prompt_text = _stripped_prompt_text(prompt_text)
    negative_prompt = _negative_prompt_text(negative_prompt)
    inputs = _plan_inputs(profile, input_dir, source, found, requester)
    reused, prompt_text, negative_prompt = _plan_prompt(
        profile, found.prompt, prompt_text, negative_prompt, name, input_dir, inputs.source_run
    )
    video = _probe(inputs)
    chosen_node = _choose_node(node, found.node, profile)
    resolved = _plan_parameters(
        profile,
        {**node_parameters(chosen_node, profile.name), **found.parameters},
        weights,
        parameters,
        inputs.modalities,
        video,
    )
    notices = [*inputs.notices, *profile.notices(parameters or {}, resolved)]
    return RunPlan(
        node=chosen_node,
        input_set=inputs.input_set,
        parameters=resolved,
        profile=profile,
        source_video=inputs.source_video,
        source_run=inputs.source_run,
        expected=profile.expected_output(resolved, video),
        prompt=reused,
        prompt_text=prompt_text,
        negative_prompt=negative_prompt,
        name=name,
        like=like,
        priority=priority,
        notices=notices,
    )


def _requester_may_use(
    input_dir: Path | None, source: str | None, priority: int, requester: AbstractBaseUser
) -> tuple[Path | None, str | None]:
    """The inputs and source the web's or the API's ``requester`` named, if theirs; their priority checked."""
    if input_dir is not None:
        input_dir = inputs_reference_for(reference=str(input_dir), requester=requester)
    if source is not None:
        source = inputs_reference_for(reference=str(source), requester=requester)
    run_priority_check(priority=priority, requester=requester)
    return input_dir, source


def _profile_of(model: str) -> ModelProfile:
    try:
        return profile_for(model)
    except UnknownModel as exc:
        raise RunRequestError(str(exc), field="model_type") from None


def _stripped_prompt_text(prompt_text: str | Caption | None) -> str | None:
    """The text as stored (None: not given): plain text stripped, a structured caption as compact
    JSON; a RunRequestError if it is blank or a caption that is not valid."""
    if prompt_text is None:
        return None
    try:
        prompt_text = parse_prompt(prompt_text).text
    except PromptError as exc:
        raise RunRequestError(str(exc), field="prompt_text") from None
    if not prompt_text:
        raise RunRequestError("the prompt text is blank: describe what to generate", field="prompt_text")
    return prompt_text


def _negative_prompt_text(negative_prompt: str | Caption | None) -> str | None:
    """The negative text as stored (None: not given, "": the model's default), as _stripped_prompt_text."""
    if negative_prompt is None:
        return None
    try:
        return parse_prompt(negative_prompt, label="the negative prompt").text
    except PromptError as exc:
        raise RunRequestError(str(exc), field="negative_prompt") from None


def _plan_inputs(
    profile: ModelProfile,
    input_dir: Path | None,
    source: str | None,
    found: _Like,
    requester: AbstractBaseUser | None,
) -> _PlanInputs:
    """What _read_inputs gives, or no inputs at all for a text-to-world run that names none."""
    if profile.needs_video or input_dir is not None or source is not None or found.prompt is not None:
        return _read_inputs(
            input_dir=input_dir,
            source=source,
            like_prompt=found.prompt,
            like_config=found.config,
            requester=requester,
        )
    return _PlanInputs(None, "", "", [])  # text to world: no inputs


def _plan_prompt(
    profile: ModelProfile,
    like_prompt: Prompt | None,
    prompt_text: str | None,
    negative_prompt: str | None,
    name: str,
    input_dir: Path | None,
    source_run: str,
) -> tuple[Prompt | None, str, str]:
    """The prompt to reuse (None: a new one is created), and the run's text and negative text."""
    if source_run and like_prompt is None and prompt_text is None:
        # Upscaling (or describing) a run's output: it keeps the prompt that made the video.
        like_prompt = Run.objects.select_related("prompt").get(pk=source_run).prompt
    if prompt_text is None and like_prompt is None:
        if profile.prompt_required:
            raise RunRequestError(
                "give the prompt text (or --like RUN_OR_PROMPT_ID to reuse one)", field="prompt_text"
            )
        prompt_text = profile.default_prompt
    # Working on a run's output (upscaling it, asking about it) keeps that run's prompt.
    reuse = (
        like_prompt is not None
        and prompt_text is None
        and negative_prompt is None
        and (input_dir is None or bool(source_run))
    )
    return (
        like_prompt if reuse and not name else None,
        prompt_text if prompt_text is not None else like_prompt.prompt_text,
        negative_prompt if negative_prompt is not None else getattr(like_prompt, "negative_prompt", ""),
    )


def _probe(inputs: _PlanInputs) -> VideoFacts | None:
    """The facts of the video the run works on (a single source video, or the inputs' color video)."""
    try:
        if inputs.source_video:
            info = probe_input(Path(inputs.source_video))
        elif inputs.input_set:
            info = inputs.input_set.info.get("color") or inputs.input_set.info.get("image")
        else:
            info = None
    except InvalidVideo as exc:
        raise RunRequestError(str(exc), field="inputs") from None
    return _video_facts(info)


def _plan_parameters(
    profile: ModelProfile,
    like_parameters: dict[str, Any],
    weights: dict[str, float] | None,
    parameters: dict[str, Any] | None,
    modalities: set[str],
    video: VideoFacts | None,
) -> dict[str, Any]:
    """The model's parameters: the reused run's or prompt's, then the weights and parameters given."""
    base = profile.carried_over({key: value for key, value in like_parameters.items() if key != "controls"})
    controls = {}
    if profile.wants_controls({**base, **(parameters or {})}, video):
        controls = dict(like_parameters.get("controls") or profile.default_controls(modalities))
    controls.update(weights or {})
    resolved = _resolve(profile, base, controls, parameters, video)
    try:
        profile.check_inputs(resolved, modalities)
    except ParameterError as exc:
        field = f"weight_{exc.name}" if exc.name in profile.hints else exc.name
        raise RunRequestError(str(exc), field=field) from None
    # What the run reads must be there: a folder holding only an image passed, and the job's launch
    # then failed on the missing color.mp4, leaving the run staged for ever.
    missing = profile.needed_inputs(resolved, modalities) - modalities
    if missing:
        files = ", ".join("color.mp4" if name == "color" else f"its {name} file" for name in sorted(missing))
        held = ", ".join(sorted(modalities)) or "no videos"
        raise RunRequestError(
            f"{profile.label} reads the input folder's {files}, which it lacks (it has: {held})",
            field="inputs",
        )
    return resolved


def run_priority_ceiling(requester: AbstractBaseUser | None) -> int | None:
    """The highest priority ``requester`` may give a run (None: no limit but the database's)."""
    if requester is None or requester.is_staff:
        return None
    return USER_PRIORITY_MAX


def run_priority_within_reach(*, priority: int, requester: AbstractBaseUser | None) -> int:
    """``priority`` brought into the range ``requester`` may set (running a staff-raised run again)."""
    ceiling = run_priority_ceiling(requester)
    return priority if ceiling is None else min(max(priority, 0), ceiling)


def run_priority_check(*, priority: int, requester: AbstractBaseUser | None) -> None:
    """A priority ``requester`` may set, else a RunRequestError on "priority" saying who may."""
    ceiling = run_priority_ceiling(requester)
    if ceiling is not None and not 0 <= priority <= ceiling:
        raise RunRequestError(
            f"priority must be from 0 to {ceiling}; higher (or negative) priorities are set by staff",
            field="priority",
        )
