"""The API's declared shapes: what a request may hold and what a response holds.

These schemas are the one place a request body or query is validated for type, size and
storability (the services then check meaning: models, parameters, ownership); the OpenAPI
document at /api/openapi.json is generated from them.
"""

from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import AfterValidator, ConfigDict, Discriminator, Field, StringConstraints, Tag

from cosmos.profiles import ALIASES
from cosmos_site.model_types import ModelType
from cosmos_site.validators import first_unstorable, unstorable_reason
from prompts.models import Prompt
from prompts.structured import compact_json
from runs.models import PRIORITY_MAX, PRIORITY_MIN, USER_PRIORITY_MAX, FailureKind, RunStatus
from webhooks.models import EVENTS, SUBJECT_MAX_LENGTH, WebhookEndpoint

MAX_PAGE_SIZE = 200
MAX_PAGE = 1_000_000
PROMPT_MAX_CHARS = 20_000
INPUTS_MAX_CHARS = 1024


def _storable(value: str) -> str:
    if reason := unstorable_reason(value):
        raise ValueError(f"cannot be stored: {reason}")
    return value


def _storable_json(value: Any) -> Any:
    if found := first_unstorable(value):
        where, reason = found
        raise ValueError(f"{where} cannot be stored: {reason}")
    return value


def _caption_size(value: dict[str, Any]) -> dict[str, Any]:
    # The caption is stored as its compact JSON: the same limit as a prompt given as text.
    if len(compact_json(value)) > PROMPT_MAX_CHARS:
        raise ValueError(f"a structured caption is at most {PROMPT_MAX_CHARS} characters as compact JSON")
    return value


def _text(max_length: int, *, min_length: int = 0) -> Any:
    """A string of at most ``max_length`` characters that every database can store."""
    return Annotated[
        str, StringConstraints(min_length=min_length, max_length=max_length), AfterValidator(_storable)
    ]


PromptText = _text(PROMPT_MAX_CHARS)
InputsReference = _text(INPUTS_MAX_CHARS, min_length=1)
PromptName = _text(Prompt._meta.get_field("name").max_length)
Identifier = _text(40)
NodeName = _text(64)
HintName = _text(32)
SearchQuery = _text(500)
TagName = _text(50)
SizeText = _text(20)  # a byte size as people write it: "500MB", "2GiB"
WebhookUrl = _text(WebhookEndpoint._meta.get_field("url").max_length, min_length=1)
WebhookScope = _text(SUBJECT_MAX_LENGTH)
ModelName = Literal[tuple([*ModelType.values, *ALIASES])]
Weight = Annotated[float, Field(ge=0, le=1)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_storable_json)]
# A structured caption sent as an object (prompts/structured.py checks what it holds).
CaptionObject = Annotated[dict[str, Any], AfterValidator(_storable_json), AfterValidator(_caption_size)]
# Text or an object: the value's own type picks which to check, so an error is about that one.
PromptInput = Annotated[
    Annotated[PromptText, Tag("text")] | Annotated[CaptionObject, Tag("caption")],
    Discriminator(lambda value: "caption" if isinstance(value, dict) else "text"),
]
CAPTION_HELP = (
    " Plain text, or a structured caption (Cosmos 3's native prompt): a JSON object, or its JSON as a "
    "string; it is stored and sent to the model as compact JSON."
)


class Strict(Schema):
    # JSON types as sent: "5" is not a number and true is not 1; an unknown key is a mistake.
    model_config = ConfigDict(strict=True, extra="forbid")


class InputsFolder(Strict):
    dir: InputsReference


class RunIn(Strict):
    """A new run. Give the prompt text, or an earlier prompt's id to run again."""

    prompt: PromptInput | None = Field(
        None, description="What to generate (for Reason1 and Reason2, the question)." + CAPTION_HELP
    )
    prompt_id: Identifier | None = Field(
        None, description="An earlier prompt of yours (ps_…) whose text, inputs and settings to reuse."
    )
    model_type: ModelName | None = Field(
        None, description="The model; COSMOS_DEFAULT_MODEL (cosmos3_nano) by default."
    )
    inputs: InputsReference | InputsFolder | None = Field(
        None,
        description=(
            "Your input set (its name), one of your runs (rs_…, its output video), or a folder of yours "
            "on the server (an upload, a folder your prompts used, or one under COSMOS_INPUT_ROOTS)."
        ),
    )
    name: PromptName | None = None
    negative_prompt: PromptInput | None = Field(
        None, description="What to avoid; blank: the model's default." + CAPTION_HELP
    )
    parameters: JsonObject | None = Field(
        None, description="The model's parameters by name (see cosmos_run --param); weights may sit here too."
    )
    weights: dict[HintName, Weight] | None = Field(
        None, description='Control weights from 0 to 1, such as {"edge": 0.6, "depth": 0.4}.'
    )
    node: NodeName | None = Field(None, description='A GPU node by name, or "auto".')
    priority: Annotated[int, Field(ge=PRIORITY_MIN, le=PRIORITY_MAX)] | None = Field(
        None, description=f"Higher runs first: 0 to {USER_PRIORITY_MAX}; staff may set any."
    )
    webhook_url: WebhookUrl | None = Field(
        None,
        description="An http(s) URL that gets this run's end (run.completed, run.failed, run.cancelled), "
        "signed the Standard Webhooks way; the response holds its secret, once.",
    )


WEBHOOK_EVENTS_HELP = f"The event types it gets: {', '.join(EVENTS)} (all by default)."
SECRET_HELP = (
    "The signing secret (whsec_…), shown this once: check each delivery's webhook-signature with it."
)


class WebhookIn(Strict):
    """A URL that gets your events as signed JSON POSTs (Standard Webhooks)."""

    url: WebhookUrl = Field(description="An http(s) URL on a public address.")
    events: Annotated[list[Literal[EVENTS]], Field(min_length=1)] | None = Field(
        None, description=WEBHOOK_EVENTS_HELP
    )
    scope: WebhookScope | None = Field(
        None, description="Only events about this run (rs_…) or sweep (sw_…); none: all of yours."
    )


class WebhookOut(Schema):
    webhook_id: str
    url: str
    events: list[str]
    scope: str | None
    active: bool
    created_at: str


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(description=SECRET_HELP)


class WebhookListOut(Schema):
    results: list[WebhookOut]


class RunCreatedOut(Schema):
    run_id: str
    prompt_id: str
    status: str
    url: str
    webhook: WebhookCreatedOut | None = Field(
        None, description="The endpoint made for webhook_url, with its secret (shown this once)."
    )


class ErrorOut(Schema):
    error: str
    field: str | None = None


PROMPT_TEXT_HELP = "The prompt as the model gets it: plain text, or a structured caption's compact JSON."
PROMPT_CAPTION_HELP = "The structured caption (the text decoded), or null when the text is plain."


class RunSummaryOut(Schema):
    model_config = ConfigDict(extra="allow")
    run_id: str
    prompt_id: str
    prompt_name: str
    model_type: str
    status: str
    failure_kind: Literal[tuple(FailureKind.values)] | None = Field(
        description="Why a failed run failed (None unless it failed); checkpoints: a checkpoint could not be "
        "downloaded or is missing on the node, and the run's failure hint names it."
    )
    error: str | None
    node: str | None
    created_at: str | None
    started_at: str | None
    completed_at: str | None
    duration_seconds: float | None
    output_path: str | None = Field(
        description="The run's video, or its image (None before, or for an answer)."
    )
    rating: int | None
    starred: bool
    sweep_id: str | None = Field(None, description="The sweep it is a cell of (sw_…), or null.")
    sweep_cell: dict[str, Any] | None = Field(None, description="Its cell of that sweep: {axis: value}.")


class RunPageOut(Schema):
    page: int
    page_size: int
    count: int
    results: list[RunSummaryOut]


class ProgressOut(Schema):
    timestamp: str | None
    stage: str
    percentage: float
    message: str


OUTPUTS_DESCRIPTION = (
    "The run's files on the server (paths), each key present only when the run has that file: dir, "
    "files; the result, a video (video, with video_info: frames, fps, width, height, duration_seconds, "
    "codec) or an image (image, with image_info: width, height, format); thumbnail (a 320-wide JPEG of "
    "either); controls (hint → control video, for transfer runs); log, spec, sample_args, "
    "sample_outputs; answer and reasoning (Reason1, Reason2); upsampled_prompt and prompt_id "
    "(prompt upsampler)."
)


class RunDetailOut(RunSummaryOut):
    prompt_text: str = Field(description=PROMPT_TEXT_HELP)
    prompt_caption: dict[str, Any] | None = Field(None, description=PROMPT_CAPTION_HELP)
    negative_prompt: str
    negative_prompt_caption: dict[str, Any] | None = Field(None, description=PROMPT_CAPTION_HELP)
    inputs: dict[str, Any]
    execution_config: dict[str, Any]
    outputs: dict[str, Any] = Field(description=OUTPUTS_DESCRIPTION)
    metadata: dict[str, Any]
    progress: list[ProgressOut]


class CancelOut(Schema):
    run_id: str
    status: str
    cancel_requested: bool


class PromptOut(Schema):
    prompt_id: str
    name: str
    prompt_text: str = Field(description=PROMPT_TEXT_HELP)
    prompt_caption: dict[str, Any] | None = Field(None, description=PROMPT_CAPTION_HELP)
    negative_prompt: str
    negative_prompt_caption: dict[str, Any] | None = Field(None, description=PROMPT_CAPTION_HELP)
    model_type: str
    created_at: str
    snippet: str


class PromptPageOut(Schema):
    query: str
    results: list[PromptOut]


class RunFilters(Schema):
    status: Literal[tuple(RunStatus.values)] | None = None
    model: Literal[tuple(ModelType.values)] | None = None
    node: NodeName | None = None
    prompt: Identifier | None = None
    starred: Literal["0", "1"] | None = Field(None, description="1: starred runs only; 0: the others.")
    page: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 1
    page_size: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 50


class PromptFilters(Schema):
    q: SearchQuery = Field("", description='Words (all must match), "a phrase", prefix*, -excluded.')
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 20


# --- sweeps -----------------------------------------------------------------------------------------

AxisName = _text(64, min_length=1)
# A value as the model takes it (a seed, a weight, a parameter's choice) or a text (prompt, inputs).
AxisValue = bool | int | float | PromptText
SweepName = _text(200)


class SweepAxisIn(Strict):
    name: AxisName = Field(
        description="seed, prompt, inputs, a control weight (edge, depth, seg, blur, …) or a parameter's "
        "name."
    )
    values: Annotated[list[AxisValue], Field(min_length=1, max_length=1000)]


class SweepIn(Strict):
    """A new sweep: one run per cell of the grid its axes make (or, with dry_run, only its plan)."""

    axes: Annotated[list[SweepAxisIn], Field(min_length=1, max_length=16)] = Field(
        description='The grid, e.g. [{"name": "seed", "values": [1, 2, 3]}, {"name": "edge", "values": '
        "[0.2, 1]}]. A prompt axis holds whole texts, or (with prompt) variants: each value replaces its "
        "first one in prompt."
    )
    prompt: PromptText | None = Field(
        None, description="What to generate (omit with a prompt axis or from_run)."
    )
    negative_prompt: PromptText | None = None
    model_type: ModelName | None = None
    inputs: InputsReference | None = Field(
        None, description="Your input set (its name), one of your runs (rs_…) or an input folder of yours."
    )
    base: JsonObject | None = Field(
        None,
        description='Parameters and control weights every cell shares, e.g. {"num_steps": 8, "depth": 0.4}.',
    )
    from_run: Identifier | None = Field(
        None, description="Sweep from this run of yours: its prompt, inputs and settings."
    )
    name: SweepName | None = None
    node: NodeName | None = Field(None, description='A GPU node by name, or "auto" (the default).')
    priority: Annotated[int, Field(ge=PRIORITY_MIN, le=PRIORITY_MAX)] | None = None
    dry_run: bool = Field(
        False, description="Plan only: the cells and the size; nothing is created or queued."
    )
    webhook_url: WebhookUrl | None = Field(
        None,
        description="An http(s) URL that gets the end of each of this sweep's runs and then sweep.completed, "
        "signed the Standard Webhooks way; the response holds its secret, once.",
    )


class SweepProblemOut(Schema):
    axis: str
    value: Any = None
    message: str


class SweepErrorOut(ErrorOut):
    errors: list[SweepProblemOut] = Field(default_factory=list, description="Each axis value at fault.")


class SweepPlanOut(Schema):
    model_type: str
    axes: list[dict[str, Any]]
    base: dict[str, Any]
    size: int
    max_runs: int
    from_run: str | None
    cells: list[dict[str, Any]] = Field(description="Each cell's values, {axis: value}, in queue order.")
    nodes: list[str]
    notices: list[str]


class SweepCreatedOut(Schema):
    sweep_id: str
    run_ids: list[str]
    size: int
    status: str
    webhook: WebhookCreatedOut | None = Field(
        None, description="The endpoint made for webhook_url, with its secret (shown this once)."
    )


class SweepOut(Schema):
    sweep_id: str
    name: str
    model_type: str
    owner: str | None
    axes: list[dict[str, Any]]
    base: dict[str, Any]
    from_run: str | None
    created_at: str | None
    cancel_requested_at: str | None
    completed_at: str | None
    size: int
    runs: int
    counts: dict[str, int] = Field(description="Its runs in each status.")
    done: int
    ended: bool
    failed: int


class SweepCellOut(Schema):
    cell: dict[str, Any]
    run_id: str
    status: str


class SweepDetailOut(SweepOut):
    cells: list[SweepCellOut]


class SweepPageOut(Schema):
    page: int
    page_size: int
    count: int
    results: list[SweepOut]


class SweepFilters(Schema):
    page: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 1
    page_size: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 50


class SweepCancelOut(Schema):
    sweep_id: str
    cancelled_runs: int = Field(description="Runs asked to stop (queued ones are cancelled at once).")
    counts: dict[str, int]
