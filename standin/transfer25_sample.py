"""One Transfer2.5 sample: _generate_sample and the pipeline's generate_img2world, as seen from outside.

The sample's arguments (<name>.json), the prompt guardrails, the control videos (computed or given, at
the input's size), the chunks with one tqdm bar each, then the controls saved, the video guardrail and
the restyled video with its prompt (a one-frame input makes `<name>.jpg` and `<name>_control_<key>.jpg`
instead). Files in the making have hidden names; a blocked or failed sample leaves none of them.
"""

import json
import math
import os

from . import cosmos25
from .common import Crash
from .cosmos3_sample import write_jpeg
from .styling import render_restyled, write_control
from .transfer1_pipeline import BUCKETS
from .video import last_frame, probe

CONTROL_KEYS = ("edge", "vis", "depth", "seg")

# Phase durations in seconds (reference §2.5, §9), scaled by --time-scale.
INPUT, EMBEDDINGS, ENCODE_DECODE, SAVE = 1.0, 3.0, 8.0, 2.0
SECONDS_PER_STEP, EXTRA_HINT_COST, RESOLUTION_COST = 10.0, 0.15, {"720": 1.0, "480": 0.4}
JPEG_QUALITY = 85  # save_img_or_video's one-frame JPEG
PREPROCESS = {"depth": 25.0, "seg": 80.0}  # per 93 frames, computed before the chunks; edge/vis: in-loop

MAIN = [("example:94:<module>", "main(args)")]
SAMPLE = [
    *MAIN,
    ("example:78:main", "inference.generate(inference_samples, output_dir=args.setup.output_dir)"),
    ("inference:168:generate", "output_path = self._generate_sample(sample, output_dir, sample_id=i_sample)"),
]
GENERATE = [
    *SAMPLE,
    (
        "inference:260:_generate_sample",
        "output_video, control_video_dict, mask_video_dict, fps, _ = "
        "self.inference_pipeline.generate_img2world(",
    ),
    ("contextlib:116:decorate_context", "return func(*args, **kwargs)"),
]
OOM_STACK = [
    *GENERATE,
    ("pipeline:642:generate_img2world", "sample = self.model.generate_samples_from_batch("),
    ("contextlib:116:decorate_context", "return func(*args, **kwargs)"),
    (
        "model:442:generate_samples_from_batch",
        "velocity_pred = velocity_fn(noise, latent_model_input, timestep.unsqueeze(0))",
    ),
    ("model:402:velocity_fn", "cond_v = self.denoise(noise, noise_x, timestep, condition)"),
    ("module:1773:_wrapped_call_impl", "return self._call_impl(*args, **kwargs)"),
    ("module:1784:_call_impl", "return forward_call(*args, **kwargs)"),
]
VAE_STACK = [
    *GENERATE,
    ("pipeline:652:generate_img2world", "video = self.model.decode(sample).cpu()  # Shape: (1, C, T, H, W)"),
    ("model:287:decode", "return self.tokenizer.decode(latent / self.sigma_data)"),
]


def blocked(sim, cfg, message, line):
    sim.critical(f"inference:{line}:_generate_sample", message)
    if not cfg.keep_going:
        raise Crash(
            [*SAMPLE, (f"inference:{line + 4}:_generate_sample", "raise Exception(message)")],
            f"Exception: {message}",
        )


def chunk_count(frames, per_chunk, conditional):
    if per_chunk == 1 or frames <= per_chunk:
        return 1
    return 1 + math.ceil((frames - per_chunk) / (per_chunk - conditional))


def output_size(sample, info, scale):
    if sample["keep_input_resolution"]:
        return info.width - info.width % 2, info.height - info.height % 2
    _, (width, height) = min(BUCKETS, key=lambda bucket: (bucket[0] - info.width / info.height) ** 2)
    factor = 1.0 if sample["resolution"] != "480" else 432 / 704
    return tuple(max(64, round(side * factor * scale / 16) * 16) for side in (width, height))


def generate_sample(sim, cfg, sample, distilled, out):
    name, prompt = sample["name"], sample["prompt"]
    base = os.path.join(out, name)
    sim.debug("inference:186:_generate_sample", f"InferenceArguments({sample})")
    with open(f"{base}.json", "w", encoding="utf-8") as handle:
        handle.write(json.dumps(sample, separators=(",", ":")))
    sim.info("inference:208:_generate_sample", f"Saved arguments to {base}.json")
    negative = None if distilled else sample["negative_prompt"]
    if cfg.disable_guardrails:
        sim.warning("inference:239:_generate_sample", "Guardrail checks on prompt are disabled")
    else:
        sim.info("inference:213:_generate_sample", "Running guardrail check on prompt...")
        if not cosmos25.text_guardrail(sim, prompt):
            return blocked(sim, cfg, f"Guardrail blocked generation. Prompt: {prompt}", 217)
        sim.success("inference:223:_generate_sample", "Passed guardrail on prompt")
        if negative is not None:
            if not cosmos25.text_guardrail(sim, negative):
                return blocked(sim, cfg, f"Guardrail blocked generation. Negative prompt: {negative}", 231)
            sim.success("inference:237:_generate_sample", "Passed guardrail on negative prompt")
    keys = [key for key in CONTROL_KEYS if sample[key]]
    paths = {}
    for key in keys:
        paths |= {key: sample[key]["control_path"], f"{key}_mask": sample[key]["mask_path"]}
        paths[f"{key}_mask_prompt"] = sample[key]["mask_prompt"]
    sim.info("inference:242:_generate_sample", f"Processing the following paths: {paths}")
    if "seg" in keys and not sample["seg"]["control_path"] and not sample["seg"]["control_prompt"]:
        sim.warning(
            "config:585:seg_control_prompt",
            'No "control_prompt" provided for on-the-fly segmentation, using the first 128 words of the '
            "input prompt",
        )
    hidden = {key: os.path.join(out, f".{name}_control_{key}.mp4") for key in keys}
    hidden["output"] = os.path.join(out, f".{name}.mp4")
    try:
        saved = generate(sim, cfg, sample, keys, negative, hidden)
        finish(sim, cfg, sample, keys, hidden, base, saved)
    finally:
        for path in hidden.values():
            if os.path.exists(path):
                os.remove(path)
    return None


def generate(sim, cfg, sample, keys, negative, hidden):
    """generate_img2world (its own lines are hidden on the console): inputs, controls, the chunks."""
    video = sample["video_path"]
    info = probe(video)
    frames = min(info.frames, sample["max_frames"] or info.frames)
    size = output_size(sample, info, sim.resolution_scale)
    sim.info("pipeline:472:generate_img2world", "Loading input video...", console=False)
    sim.spend(INPUT)
    sim.info("pipeline:492:generate_img2world", "Computing prompt text embeddings...", console=False)
    sim.spend(EMBEDDINGS)
    if negative:
        sim.info(
            "pipeline:501:generate_img2world", "Computing negative prompt text embeddings...", console=False
        )
        sim.spend(EMBEDDINGS / 2)
    sim.info("pipeline:513:generate_img2world", "Processing image context if available...", console=False)
    sim.info("pipeline:525:generate_img2world", "Loading control inputs...", console=False)
    write_controls(sim, sample, keys, hidden, size=size, frames=frames)
    step = seconds_per_step(cfg, sample, keys)
    generate_chunks(sim, sample, frames, step)
    reads = [(key, hidden[key], sample[key]["control_weight"]) for key in keys]
    with sim.phase(SAVE):
        render_restyled(
            hidden["output"],
            size=size,
            fps=info.fps,
            frames=frames,
            video=video,
            reads=reads,
            prompt=sample["prompt"],
            seed=sample["seed"],
            source_size=(info.width, info.height),
        )
    sim.info(
        "pipeline:736:generate_img2world",
        f"Average time per chunk: {step * sample['num_steps']}",
        console=False,
    )
    return frames


def write_controls(sim, sample, keys, hidden, *, size, frames):
    """Each control video: the one given, resized, or one made from the input video (taking its time)."""
    video = sample["video_path"]
    for key in keys:
        block, given = sample[key], sample[key]["control_path"]
        levels = {
            "edge_level": block.get("preset_edge_threshold", "medium"),
            "blur_level": block.get("preset_blur_strength", "medium"),
        }
        with sim.phase(0 if given else PREPROCESS.get(key, 0) * frames / 93):
            write_control(
                None if given else key, given or video, hidden[key], size=size, frames=frames, **levels
            )


def seconds_per_step(cfg, sample, keys):
    """One diffusion step: longer for each further control and a higher resolution, shared by the GPUs."""
    step = (
        SECONDS_PER_STEP
        * (1 + EXTRA_HINT_COST * (len(keys) - 1))
        * RESOLUTION_COST.get(sample["resolution"], 1)
    )
    return step / max(1, cfg.context_parallel_size or cosmos25.world_size())


def generate_chunks(sim, sample, frames, step):
    """The chunks of the video, each with its seed line and its diffusion steps."""
    chunks = chunk_count(frames, sample["num_video_frames_per_chunk"], sample["num_conditional_frames"])
    seed = sample["seed"]
    for chunk in range(chunks):
        sim.info("pipeline:554:generate_img2world", f"Generating chunk {chunk + 1}/{chunks}", console=False)
        seed = (seed * 1103515245 + 12345) % 1000001
        sim.info("pipeline:640:generate_img2world", f"Seed: {seed}", console=False)
        cosmos25.generate_chunk(
            sim,
            sample["num_steps"],
            step_seconds=step,
            decode_seconds=ENCODE_DECODE,
            oom_stack=OOM_STACK,
            vae_stack=VAE_STACK,
        )


def save_img_or_video(hidden, base):
    """The finished file under its own name: a video, or for one frame a JPEG (quality 85) as the
    repository's save_img_or_video writes it; the extension it got."""
    info = probe(hidden)
    if info.frames != 1:
        os.replace(hidden, f"{base}.mp4")
        return "mp4"
    image = last_frame(hidden, info.width, info.height)
    write_jpeg(f"{base}.jpg", image, (info.width, info.height), JPEG_QUALITY)
    os.remove(hidden)
    return "jpg"


def finish(sim, cfg, sample, keys, hidden, base, frames):
    """Controls saved, then the video guardrail, then the video and its prompt (a one-frame result is
    saved as .jpg, and the log names it so)."""
    if cfg.model.endswith("/distilled") and frames > 93:
        sim.warning(
            "inference:299:_generate_sample",
            f"Generated output has {frames} frames (> 93). The distilled Transfer 2.5 model is not trained "
            "to "
            "support auto-regressive generation",
        )
    ext = "jpg" if frames == 1 else "mp4"
    for key in keys:
        save_img_or_video(hidden[key], f"{base}_control_{key}")
        sim.info("inference:311:_generate_sample", f"{key} control video saved to {base}_control_{key}.{ext}")
    if cfg.disable_guardrails:
        sim.warning("inference:335:_generate_sample", "Guardrail checks on video are disabled")
    else:
        sim.info("inference:319:_generate_sample", "Running guardrail check on video...")
        if not cosmos25.video_guardrail(sim, frames):
            if cfg.keep_going:
                return
            source = 'raise Exception("Guardrail blocked video2world generation.")'
            raise Crash(
                [*SAMPLE, ("inference:327:_generate_sample", source)],
                "Exception: Guardrail blocked video2world generation.",
            )
        sim.success("inference:329:_generate_sample", "Passed guardrail on generated video")
    save_img_or_video(hidden["output"], base)
    with open(f"{base}.txt", "w", encoding="utf-8") as handle:
        handle.write(sample["prompt"])
    sim.success("inference:343:_generate_sample", f"Generated video saved to {base}.{ext}")
