"""One Cosmos 3 sample, as seen from outside (reference cosmos3.md §3.5, §4, §5.1, §5.2, §6, §9).

sample_args.json first; then the sampler line, the ``Sampling`` bar (one per chunk for transfer), the
diffusion cache summary, the decode, the guardrails (prompt blocklist after the bar; none on transfer),
the vision file and sample_outputs.json last. Failure modes: oom mid-bar, crash at the decode, a blocked
prompt or video (``--keep-going``: an ERROR line and the run goes on), nccl_timeout under torchrun (the
bar stops, the NCCL watchdog aborts rank 0 after the 1800 s timeout).
"""

import datetime
import json
import os
from dataclasses import dataclass, field
from fractions import Fraction

import av

from .common import ILLEGAL_ACCESS_MESSAGE, Bar, Crash, blocklist_reason
from .cosmos3_spec import SCRIPT_MAIN, SIZES, chunk_count, nearest_aspect, tier_size
from .scenes import continuation_frames, scene_frames
from .styling import Grade, render_restyled, work_size, write_control
from .video import IMAGE_EXTENSIONS, Mp4Writer, last_frame, probe

# Seconds per denoising step, Nano, 189 frames, 1xH100 SXM (§5.2: 207.8 s / 35 steps at 720p ...).
STEP_SECONDS = {"256": 0.2, "480": 1.7, "720": 5.9, "768": 6.7}
IMAGE_STEP_SECONDS = 0.07  # text2image at 960x960 (3.45 s / 50 steps)
REFERENCE_LATENT_FRAMES = 48  # 189 frames after the VAE's 4x temporal compression
GPU_SCALING = {1: 1.0, 2: 0.56, 4: 0.322, 8: 0.201}  # 720p/4: 66.9 s, /8: 41.8 s vs 207.8 s
EXTRA_HINT_COST, NO_CACHE_COST, FSDP_COST = 0.15, 1.3, 1.15
COMPILE_WARMUP, DECODE, SAVE = 60.0, 15.0, 3.0
CACHE_SKIP_SHARE = 0.25  # SeaCache's skipped share of the steps at the default threshold [est]
NCCL_TIMEOUT = 1800
FIXED_STEP_T_LIST = "[1.0, 0.9375, 0.75, 0.5]"  # [est]
OOM_MESSAGE = (
    "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 1840.00 MiB. GPU 0 has a total "
    "capacity of 79.18 GiB of which 1.21 GiB is free. Including non-PyTorch memory, this process has "
    "77.96 GiB memory in use. Of the allocated memory 74.50 GiB is allocated by PyTorch, and 2.11 GiB is "
    "reserved by PyTorch but unallocated. If reserved but unallocated memory is large try setting "
    "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for "
    "Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)"
)
STYLE_HINTS = {"edge": "edge", "blur": "vis", "depth": "depth", "seg": "seg", "wsm": "seg"}

GENERATE = [
    *SCRIPT_MAIN,
    ("script:338:inference", "outputs = inference.generate(batch)"),
    ("inference:611:generate", "return self._generate_batch(batch)"),
]
DENOISE = [
    *GENERATE,
    ("inference:702:_generate_batch", "samples = self.model.generate_samples_from_batch("),
    ("contextlib:120:decorate_context", "return func(*args, **kwargs)"),
    ("omni:3431:generate_samples_from_batch", "x0 = sampler(velocity_fn, noise, num_steps=num_steps)"),
    ("unipc:214:__call__", "model_output = model_fn(x, t)"),
    ("module:1775:_wrapped_call_impl", "return self._call_impl(*args, **kwargs)"),
    ("module:1786:_call_impl", "return forward_call(*args, **kwargs)"),
]
DECODE_STACK = [*GENERATE, ("inference:731:_generate_batch", "video = self.model.decode(samples)")]
TRANSFER_STACK = [
    *SCRIPT_MAIN,
    ("script:338:inference", "outputs = inference.generate(batch)"),
    ("inference:609:generate", "return self._generate_transfer_batch(batch)"),
    ("transfer:188:_generate_transfer_batch", "controls = load_transfer_controls(sample, hint_keys)"),
]


@dataclass
class Sample:
    values: dict  # resolved OmniSampleArgs
    hints: list
    unresolved: dict  # as validated, before the built-in defaults (a skipped sample's args)
    path: str
    index: int


@dataclass
class Context:
    sim: object
    cfg: object
    checkpoint: object
    out: str
    ranks: int
    warmed_up: bool = field(default=False)


def owners(context, number):
    """The ranks that run sample ``number``: all (latency), or the one it is sharded to (throughput)."""
    if context.ranks == 1 or context.cfg.parallelism_preset == "latency":
        return list(range(context.ranks))
    return [number % context.ranks]


def ranked(context, number, level, site, message):
    """A rank0_only=False line: once per rank that runs the sample, each with its [RANK n] prefix."""
    for rank in owners(context, number):
        context.sim.log(level, site, f"[RANK {rank}] {message}", files=rank == 0)


def generate(context, sample, number):
    values = sample.values
    count = values["num_outputs"]
    for output in range(count):
        args = {**values, "seed": values["seed"] + output}
        folder = os.path.join(context.out, values["name"], *([str(output)] if count > 1 else []))
        if sample.hints:
            generate_transfer(context, sample, args, folder, number)
        else:
            generate_vision(context, sample, args, folder, number)


def save_args(context, args, folder, number):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "sample_args.json")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(args, separators=(",", ":")))
    context.sim.debug("inference:566:save_sample_args", f"OmniSampleArgs({args})")
    ranked(context, number, "INFO", "inference:571:save_sample_args", f"Saved sample args to '{path}'")


def write_outputs(folder, args, files, *, status="success", message=None):
    """SampleOutputs (compact JSON), written last under a hidden name so it is never seen half-written."""
    outputs = [{"content": {}, "files": files}] if files else []
    data = {"args": args, "status": status, "message": message, "stack_trace": None, "outputs": outputs}
    path = os.path.join(folder, "sample_outputs.json")
    with open(path + ".part", "w", encoding="utf-8") as handle:
        handle.write(json.dumps(data, separators=(",", ":")))
    os.replace(path + ".part", path)
    return path


def sampler_line(context, args):
    if context.checkpoint.distilled:
        text = f"FixedStep (t_list={FIXED_STEP_T_LIST})"
    elif context.cfg.sampler == "edm":
        text = f"EDM (sigma_max={args['sigma_max']}, num_steps={args['num_steps']})"
    else:
        text = f"UniPC (shift={args['shift']}, num_steps={args['num_steps']})"
    context.sim.info("omni:3404:generate_samples_from_batch", f"Using sampler: {text}")


def step_seconds(context, args, frames, hints=0):
    """One denoising step (§5.2/§9): by tier and length, model size, controls and GPUs."""
    width, height = SIZES[args["resolution"]][args["aspect_ratio"] or "1,1"]
    if frames == 1:
        seconds = IMAGE_STEP_SECONDS * width * height / (960 * 960)
    else:
        seconds = STEP_SECONDS[args["resolution"]] * ((frames - 1) // 4 + 1) / REFERENCE_LATENT_FRAMES
    seconds *= context.checkpoint.step_cost * (1 + EXTRA_HINT_COST * max(0, hints - 1))
    if not context.cfg.diffusion_cache:
        seconds *= NO_CACHE_COST
    if context.ranks > 1:
        if context.cfg.parallelism_preset == "latency":
            seconds *= GPU_SCALING.get(context.ranks, context.ranks**-0.77)
        else:  # replicas side by side: each sample costs 1/N of one replica's (FSDP-sharded) time
            seconds *= FSDP_COST / context.ranks
    return seconds


def denoise(context, args, number, seconds):
    """The sampler's steps: a ``Sampling`` bar on rank 0 (none for EDM and FixedStep, none with
    DISABLE_TQDM=1), the first sample's compile warm-up, and where oom and nccl_timeout strike."""
    sim, steps = context.sim, args["num_steps"]
    sampler_line(context, args)
    shown = (
        0 in owners(context, number)
        and context.cfg.sampler == "unipc"
        and not context.checkpoint.distilled
        and os.environ.get("DISABLE_TQDM") != "1"
    )
    bar = Bar(steps, "Sampling") if shown else None
    for step in range(steps):
        if step == steps // 2 and sim.fail == "oom":
            sim.spend(seconds)
            close(bar)
            raise Crash(DENOISE, OOM_MESSAGE)
        if step == steps // 2 and sim.fail == "nccl_timeout" and context.ranks > 1:
            sim.spend(NCCL_TIMEOUT)  # the bar stops: every rank waits in a collective
            close(bar)
            raise Crash([], "", prelude=watchdog_abort(context.ranks), signal=6)
        if not context.warmed_up and context.cfg.use_torch_compile:
            sim.spend(COMPILE_WARMUP)
        context.warmed_up = True
        sim.spend(seconds)
        if bar:
            bar.update()
    close(bar)
    if context.cfg.sampler == "unipc" and context.cfg.diffusion_cache and not context.checkpoint.distilled:
        skipped = int(steps * CACHE_SKIP_SHARE) if steps >= 8 else 0
        sim.info(
            "cache:241:report", f"[Diffusion Cache] sample done: full={steps - skipped} skipped={skipped}"
        )


def close(bar):
    if bar:
        bar.close()


def watchdog_abort(ranks):
    """What ProcessGroupNCCL's watchdog prints on each rank before it takes the process down."""
    now = datetime.datetime.now()
    stamp = f"E{now:%m%d %H:%M:%S}.{now.microsecond * 1000:09d}"
    work = "WorkNCCL(SeqNum=4187, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=1800000)"
    lines = []
    for rank in range(ranks):
        group = f"[PG ID 0 PG GUID 0(default_pg) Rank {rank}]"
        timeout = (
            f"[Rank {rank}] Watchdog caught collective operation timeout: {work} ran for 1800088 "
            "milliseconds before timing out."
        )
        lines += [
            f"[rank{rank}]:[{stamp} ProcessGroupNCCL.cpp:632] {timeout}",
            f"[rank{rank}]:[{stamp} ProcessGroupNCCL.cpp:2271] {group} failure detected by watchdog at "
            "work sequence id: 4187 PG status: last enqueued work: 4187, last completed work: 4186",
            f"[rank{rank}]:[{stamp} ProcessGroupNCCL.cpp:670] Stack trace of the failed collective not "
            "found, potentially because FlightRecorder is disabled. You can enable it by setting "
            "TORCH_NCCL_TRACE_BUFFER_SIZE to a non-zero value.",
            f"[rank{rank}]:[{stamp} ProcessGroupNCCL.cpp:684] [Rank {rank}] Some NCCL operations have "
            "failed or timed out. Due to the asynchronous nature of CUDA kernels, subsequent GPU operations "
            "might run on corrupted/incomplete data.",
            f"[rank{rank}]:[{stamp} ProcessGroupNCCL.cpp:698] [Rank {rank}] To avoid data inconsistency, we "
            "are taking the entire process down.",
            f"[rank{rank}]:[{stamp} ProcessGroupNCCL.cpp:2106] {group} Process group watchdog thread "
            f"terminated with exception: {timeout}",
            "terminate called after throwing an instance of 'c10::DistBackendError'",
            f"  what():  {group} Process group watchdog thread terminated with exception: {timeout}",
        ]
    return "\n".join(lines)


def decode(context, args, frames):
    sim = context.sim
    width, height = SIZES[args["resolution"]][args["aspect_ratio"] or "1,1"]
    seconds = max(
        0.5, DECODE * ((frames - 1) // 4 + 1) / REFERENCE_LATENT_FRAMES * width * height / (1280 * 720)
    )
    if sim.fail == "crash":
        sim.spend(seconds / 3)
        raise Crash(DECODE_STACK, ILLEGAL_ACCESS_MESSAGE.rstrip("\n"))
    sim.spend(seconds)


def blocked(context, args, folder, number, guard, text, what):
    """A guardrail block after generation: CRITICAL, then a raised ValueError or (--keep-going) an ERROR."""
    sim = context.sim
    sim.critical(
        f"presets:{88 if what == 'prompt' else 104}:run_{guard}_guardrail", f"GUARDRAIL BLOCKED: {text}"
    )
    detail = f"'{args['prompt']}'" if what == "prompt" else text
    message = f"Error generating sample '{args['name']}': Guardrail blocked {what} '{folder}': {detail}"
    if context.cfg.keep_going:
        sim.log("ERROR", "script:352:inference", message)
        return
    raise Crash(
        [*GENERATE, ("inference:746:_generate_batch", "raise ValueError(msg) from e")],
        f"ValueError: {message}",
    )


def guardrails_pass(context, args, folder, number):
    """The prompt blocklist, then the video check (classifier disabled at HEAD: only its warning)."""
    if not context.cfg.guardrails:
        return True
    reason = blocklist_reason(args["prompt"])
    if reason:
        blocked(context, args, folder, number, "text", f"BLOCKLIST: {reason}", "prompt")
        return False
    if context.sim.fail == "video_guardrail":
        text = "VIDEOCONTENTSAFETYFILTER: unsafe frames detected"
        blocked(context, args, folder, number, "video", text, "video")
        return False
    context.sim.warning(
        "presets:97:run_video_guardrail",
        "No content-safety models configured: the safety check is DISABLED for generated videos and images; "
        "only face blur runs.",
    )
    return True


def generate_vision(context, sample, args, folder, number):
    """text2image, image2image, text2video, image2video and (input-conditioned) video2video."""
    sim, mode = context.sim, args["model_mode"]
    if mode == "image2image" and args["aspect_ratio"] is None:
        info = probe(args["vision_path"])
        args["aspect_ratio"] = nearest_aspect(info.width, info.height)
    save_args(context, args, folder, number)
    frames = args["num_frames"]
    denoise(context, args, number, step_seconds(context, args, frames))
    decode(context, args, frames)
    if not guardrails_pass(context, args, folder, number):
        return
    size = tier_size(args["resolution"], args["aspect_ratio"], sim.resolution_scale)
    with sim.phase(SAVE):
        name = render_vision(args, size, os.path.join(folder, "vision.jpg" if frames == 1 else "vision.mp4"))
    path = write_outputs(folder, args, [name])
    ranked(context, number, "SUCCESS", "inference:802:_save_outputs", f"Saved sample outputs to '{path}'")


def rate(fps):
    return Fraction(fps).limit_denominator(1001)


def render_vision(args, size, path):
    mode, prompt, seed, frames = args["model_mode"], args["prompt"], args["seed"], args["num_frames"]
    width, height = work_size(size)
    if mode.startswith("text2"):
        images = scene_frames(prompt, seed, width, height, frames, args["fps"])
    else:
        start = last_frame(args["vision_path"], width, height)
        if mode == "image2image":
            images = iter([Grade.from_prompt(prompt, seed).apply(start)])
        else:  # the conditioning frames (1 image; 5 pixel frames = 2 latents of a video) come out as given
            images = continuation_frames(start, prompt, seed, frames, 1 if mode == "image2video" else 5)
    if frames == 1:
        write_jpeg(path, next(iter(images)), size, args["image_save_quality"])
        return path
    with Mp4Writer(path, *size, rate(args["fps"])) as writer:
        for image in images:
            writer.write(image)
    return path


def write_jpeg(path, image, size, quality):
    """vision.jpg: one JPEG (quality mapped onto ffmpeg's 2-31 qscale), renamed into place when done."""
    temporary = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.part")
    with av.open(temporary, mode="w", format="image2", options={"update": "1"}) as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuvj420p"
        qscale = max(2, min(31, round(2 + (100 - quality) * 29 / 100)))
        stream.options = {"qmin": str(qscale), "qmax": str(qscale)}
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(width=size[0], height=size[1])
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(temporary, path)


def generate_transfer(context, sample, args, folder, number):
    """_generate_transfer_batch: controls (given or computed), chunks with a bar each, the control videos
    and the output; no guardrail runs on this path at HEAD."""
    sim, hints = context.sim, sample.hints
    save_args(context, args, folder, number)
    vision = args["vision_path"]
    for key in hints:
        given = args[key]["control_path"]
        if given:
            sim.info("transfer:142:load_transfer_controls", f"Loaded pre-computed {key} control from {given}")
        elif key in ("edge", "blur"):
            sim.info("transfer:151:load_transfer_controls", f"Computing {key} control input on the fly")
        else:
            message = (
                f"FileNotFoundError: Missing pre-computed control input for '{key}'. "
                "Provide a control_path in the transfer config."
            )
            site = ("transfer:157:load_transfer_controls", "raise FileNotFoundError(")
            raise Crash([*TRANSFER_STACK, site], message)
    source = next((args[key]["control_path"] for key in hints if args[key]["control_path"]), vision)
    is_video = os.path.splitext(source)[1].lower() not in IMAGE_EXTENSIONS
    info = probe(source) if is_video else None
    frames = min(info.frames, args["max_frames"]) if info else args["num_frames"]
    fps = info.fps if info else rate(args["fps"])
    sim.spend(0.05 * frames * sum(1 for key in hints if not args[key]["control_path"]))  # on-the-fly controls
    prompt = args["prompt"]
    if args["emphasize_control_in_prompt"]:
        videos = "control videos" if len(hints) > 1 else "control video"
        prompt = f"{prompt} Follow the {' and '.join(hints)} {videos} precisely."
    sim.info("transfer:214:_generate_transfer_batch", f"[transfer] final user prompt: {prompt}")
    per_chunk = args["num_video_frames_per_chunk"]
    chunks = chunk_count(frames, per_chunk, args["num_conditional_frames"])
    seconds = step_seconds(context, args, min(frames, per_chunk), len(hints))
    for chunk in range(chunks):
        sim.debug("transfer:231:_generate_transfer_batch", f"Generating chunk {chunk + 1}/{chunks}")
        denoise(context, args, number, seconds)
        decode(context, args, min(frames, per_chunk))
    size = tier_size(args["resolution"], args["aspect_ratio"], sim.resolution_scale)
    files, reads = [], []
    with sim.phase(SAVE):
        for key in hints:
            target = os.path.join(folder, f"control_{key}.mp4")
            block, given = args[key], args[key]["control_path"]
            levels = {
                "edge_level": block.get("preset_edge_threshold", "medium"),
                "blur_level": {"none": "very_low"}.get(
                    block.get("preset_blur_strength"), block.get("preset_blur_strength", "medium")
                ),
            }
            maker = None if given else STYLE_HINTS[key]
            write_control(maker, given or vision, target, size=size, frames=frames, **levels)
            sim.info("transfer:262:_save_transfer_outputs", f"Saved control video to '{target}'")
            files.append(target)
            reads.append((STYLE_HINTS[key], target, block["weight"]))
        output = os.path.join(folder, "vision.mp4")
        video = vision if vision and os.path.splitext(vision)[1].lower() not in IMAGE_EXTENSIONS else None
        render_restyled(
            output,
            size=size,
            fps=fps,
            frames=frames,
            video=video,
            reads=reads,
            prompt=args["prompt"],
            seed=args["seed"],
        )
    path = write_outputs(folder, args, [output, *files])
    sim.success("transfer:281:_save_transfer_outputs", f"Saved transfer outputs to '{path}'")
