"""Transfer1's DiffusionControl2WorldGenerationPipeline as it is seen from outside: model loading,
generate() with its guardrails, the clip loop with its tqdm bar, and the sizes and lengths of outputs."""

import math
import sys
from dataclasses import dataclass, field

from .common import ILLEGAL_ACCESS_MESSAGE, OOM_MESSAGE, Bar, Crash, blocklist_reason, write_flush
from .styling import render_restyled
from .video import probe

MODEL_DIR, AV_MODEL_DIR = "nvidia/Cosmos-Transfer1-7B", "nvidia/Cosmos-Transfer1-7B-Sample-AV"
MAX_FRAMES = 5000  # inference_utils.NUM_MAX_FRAMES
NEW_FRAMES_PER_CLIP = 120  # a clip is 121 frames, overlapping its predecessor by one
BUCKETS = [
    (16 / 9, (1280, 704)),
    (4 / 3, (960, 704)),
    (1.0, (960, 960)),
    (3 / 4, (704, 960)),
    (9 / 16, (704, 1280)),
]
UPSCALE_FACTOR = 3  # the 4K upscaler: 3x3 overlapping 720p patches

# Phase durations in seconds on one H100 at time scale 1.0 (reference notes §9).
MODEL_LOAD = 120.0  # T5, guardrails, DiT, tokenizer and one ControlNet
EXTRA_HINT_LOAD = 9.0
UPSAMPLER_LOAD = 90.0
PROMPT_GUARDRAIL, T5, T5_OFFLOADED, DATA_AUGMENTATION = 2.0, 2.0, 30.0, 1.0
LATENT_ENCODE, SECONDS_PER_STEP, DISTILLED_DIFFUSION, VAE_DECODE = 4.0, 12.0, 15.0, 15.0
EXTRA_HINT_COST = 0.15  # each extra control makes a diffusion step 15 % slower
UPSCALE_PATCHES = 9
VIDEO_GUARDRAIL = 25.0

# Real call stacks for the simulated tracebacks: (call site, source line).
MAIN_DEMO = [("transfer:433:<module>", "demo(args, control_inputs)")]
GENERATE = [
    *MAIN_DEMO,
    ("transfer:363:demo", "batch_outputs = pipeline.generate("),
    ("pipeline:775:generate", "model_outputs = self._run_model_with_offload("),
    ("pipeline:450:_run_model_with_offload", "samples = self._run_model("),
]
OOM_STACK = [
    *GENERATE,
    ("pipeline:616:_run_model", "samples = generate_world_from_control("),
    ("utils:747:generate_world_from_control", "sample = model.generate_samples_from_batch("),
    ("model_ctrl:429:generate_samples_from_batch",
     "samples = self.sampler(x0_fn, x_sigma_max, num_steps=num_steps, sigma_max=sigma_max)"),
    ("module:1751:_wrapped_call_impl", "return self._call_impl(*args, **kwargs)"),
    ("module:1762:_call_impl", "return forward_call(*args, **kwargs)"),
    ("contextlib:116:decorate_context", "return func(*args, **kwargs)"),
    ("sampler:150:forward",
     "return self._forward_impl(float64_x0_fn, x_sigma_max, sampler_cfg).to(in_dtype)"),
    ("sampler:180:_forward_impl", "denoised_output = differential_equation_solver("),
    ("sampler:265:sample_fn", "x0_pred_B_StateShape = x0_fn(input_x_B_StateShape, sigma_cur_0 * ones_B)"),
    ("sampler:132:float64_x0_fn",
     "return x0_fn(x_B_StateShape.to(in_dtype), t_B.to(in_dtype)).to(torch.float64)"),
    ("model_ctrl:304:x0_fn", "cond_x0 = self.denoise("),
]  # fmt: skip
VAE_STACK = [
    *GENERATE,
    ("pipeline:640:_run_model", "frames = self._run_tokenizer_decoding("),
    ("pipeline:386:_run_tokenizer_decoding",
     "video = (1.0 + self.model.decode(sample)).clamp(0, 2) / 2  # [B, 3, T, H, W]"),
    ("model_t2w:157:decode", "return self.tokenizer.decode(latent / self.sigma_data)"),
    ("contextlib:116:decorate_context", "return func(*args, **kwargs)"),
    ("vae:547:decode", "return self.video_vae.decode(latent)"),
]  # fmt: skip
CHECKPOINT_STACK = [
    *MAIN_DEMO,
    ("transfer:262:demo", "pipeline = DiffusionControl2WorldGenerationPipeline("),
    ("pipeline:204:__init__", "super().__init__("),
    ("base_pipeline:88:__init__", "self._load_network()"),
    ("pipeline:334:_load_network",
     'load_network_model(self.model, f"{self.checkpoint_dir}/{self.checkpoint_name}")'),
    ("utils:228:load_network_model", "model.set_up_model()"),
    ("misc:228:wrapper", "result = func(*args, **kwargs)"),
    ("model_t2w:111:set_up_model", "self.model = self.build_model()"),
    ("model_ctrl:41:build_model", "self.load_base_model(base_model)"),
    ("model_ctrl:75:load_base_model", "state_dict = torch.load(checkpoint_path, "
     "map_location=lambda storage, loc: storage, weights_only=False)"),
    ("serialization:1484:load", 'with _open_file_like(f, "rb") as opened_file:'),
    ("serialization:759:_open_file_like", "return _open_file(name_or_buffer, mode)"),
    ("serialization:740:__init__", "super().__init__(open(name, mode))"),
]  # fmt: skip
# Line numbers of _run_model's log calls in the full and in the distilled pipeline.
RUN_MODEL_LINES = {
    False: {"augment": 484, "augmented": 527, "latent": 583, "latent_done": 596, "diffusion": 615,
            "diffusion_done": 638, "decode": 639, "decode_done": 643},
    True: {"augment": 1337, "augmented": 1356, "latent": 1394, "latent_done": 1407, "diffusion": 1426,
           "diffusion_done": 1439, "decode": 1441, "decode_done": 1443},
}  # fmt: skip


@dataclass
class Sample:
    prompt: object
    video: object
    controls: dict


@dataclass
class Plan:
    """One video to generate: its sample, final prompt, size, length and control videos."""

    sample: Sample
    prompt: str
    size: tuple = (0, 0)
    source_size: tuple = (1, 1)  # the input video's (else the first control video's) resolution
    frames: int = MAX_FRAMES
    reads: list = field(default_factory=list)  # (hint, control video path, control weight)

    @property
    def clips(self):
        return max(1, math.ceil((self.frames - 1) / NEW_FRAMES_PER_CLIP))


def bucket_size(width, height, scale):
    """The size the 720p pipeline renders an input at: its nearest aspect bucket (detect_aspect_ratio),
    scaled by the resolution scale to multiples of 16 (at least 64). An input that already has one of
    those sizes keeps it, so the stand-in's own 720p output at the same scale goes through unchanged:
    the clamp to 64 can bend a tiny bucket's aspect enough to pick another bucket otherwise."""
    scaled = {tuple(max(64, round(side * scale / 16) * 16) for side in size): size for _, size in BUCKETS}
    if (width, height) in scaled:
        return width, height
    _, (bucket_w, bucket_h) = min(BUCKETS, key=lambda bucket: (bucket[0] - width / height) ** 2)
    return tuple(max(64, round(side * scale / 16) * 16) for side in (bucket_w, bucket_h))


def output_size(width, height, scale, upscale):
    """The 720p size, three times wider and higher for the 4K upscaler (1280x704 -> 3840x2112).

    With --resolution-scale s the 720p size is the bucket times s, so an upscale of a 1280x704 video
    scaled by s (the stand-in's own 720p output at that scale, say) comes out exactly three times its
    width and height. Any other input is first fitted to its bucket, as the real upscaler does (a
    1280x720 input gives 3840x2112, not 3840x2160): then the output is three times the bucket size.
    """
    size = bucket_size(width, height, scale)
    return tuple(side * UPSCALE_FACTOR for side in size) if upscale else size


def render(plan, path, fps, seed):
    render_restyled(
        path,
        size=plan.size,
        fps=fps,
        frames=plan.frames,
        video=plan.sample.video,
        reads=plan.reads,
        prompt=plan.prompt,
        seed=seed,
        source_size=plan.source_size,
    )


class Pipeline:
    """DiffusionControl2WorldGenerationPipeline's observable behaviour: loading, generate(), guardrails."""

    def __init__(self, sim, cfg, control_inputs):
        self.sim, self.cfg, self.control_inputs = sim, cfg, control_inputs
        self.regional_prompts, self.region_definitions = None, None
        self.load_models()

    def build_model_lines(self, base_checkpoint=None):
        """model_ctrl.build_model; only the pipeline's own model loads the base checkpoint, with its log."""
        sim = self.sim
        sim.info("model_ctrl:38:build_model", "Start creating base model")
        if base_checkpoint:
            sim.info(
                "model_ctrl:74:load_base_model", f"Loading base model checkpoint (local): {base_checkpoint}"
            )
            if sim.fail == "missing_checkpoint":
                sim.spend(3)
                error = f"FileNotFoundError: [Errno 2] No such file or directory: {base_checkpoint!r}"
                raise Crash(CHECKPOINT_STACK, error)
            sim.spend(0.375 * MODEL_LOAD)
            sim.log(
                "SUCCESS",
                "model_ctrl:76:load_base_model",
                f"Complete loading base model checkpoint (local): {base_checkpoint}",
            )
        sim.info("model_ctrl:92:load_base_model", "Done loading the base model checkpoint.")
        sim.info("model_ctrl:42:build_model", "Done creating base model")
        sim.info("model_ctrl:44:build_model", "Start creating ctrlnet model")
        sim.spend(0.06 * MODEL_LOAD if base_checkpoint else 1)
        sim.info("model_ctrl:53:build_model", "Done creating ctrlnet model")

    def load_models(self):
        sim, cfg, controls = self.sim, self.cfg, self.control_inputs
        base = f"{cfg.checkpoint_dir}/{AV_MODEL_DIR if cfg.is_av_sample else MODEL_DIR}/base_model.pt"
        sim.spend(0.4 * MODEL_LOAD)  # T5-11B, Llama Guard and the video filter log nothing of their own
        if cfg.use_distilled:
            sim.info("pipeline:1279:_load_network", "Loading distilled consolidated checkpoint")
        self.build_model_lines(base)
        sim.spend(10)  # the base weights into the network
        if cfg.use_distilled:
            sim.spend(10)
        elif len(controls) == 1:
            sim.info(
                "pipeline:353:_load_network",
                f"Loading ctrl model from ckpt_path: {next(iter(controls.values()))['ckpt_path']}",
            )
            sim.spend(10)
        else:  # one more ControlNet model built and loaded for each hint
            for index, spec in enumerate(controls.values()):
                sim.info(
                    "pipeline:345:_load_network", f"Loading ctrl model from ckpt_path: {spec['ckpt_path']}"
                )
                self.build_model_lines()
                sim.spend((10 if index == 0 else EXTRA_HINT_LOAD) - 1)
        if cfg.num_gpus > 1:
            sim.info(
                f"pipeline:{1315 if cfg.use_distilled else 364}:_load_network", "Enabling CP in base model"
            )
            if len(controls) > 1:
                sim.info("pipeline:368:_load_network", "Enabling CP in hint encoders")
        if cfg.upsample_prompt:
            sim.info("pipeline:262:_init_prompt_upsampler", "Initializing prompt upsampler...")
            hint, details = None, None
            if "vis" in controls or "edge" in controls:
                hint, details = "vis", "vis" if "vis" in controls else "edge"
            elif "seg" in controls or "depth" in controls:
                hint = next(key for key in controls if key in ("seg", "depth"))
            if hint and not cfg.offload_prompt_upsampler:
                sim.spend(UPSAMPLER_LOAD)
            sim.info(
                "pipeline:279:_init_prompt_upsampler",
                f"Prompt upsampler initialized with hint key: {hint} and hint details: {details}",
            )

    def generate(self, samples):
        sim, cfg = self.sim, self.cfg
        sim.info("pipeline:705:generate", f"Running batch generation with batch_size={len(samples)}")
        sim.info("pipeline:728:generate", "Running guardrail checks on all prompts")
        safe = []
        for index, sample in enumerate(samples):
            sim.spend(PROMPT_GUARDRAIL)
            reason = blocklist_reason(sample.prompt)
            if reason:
                sim.critical("presets:55:run_text_guardrail", f"GUARDRAIL BLOCKED: BLOCKLIST: {reason}")
                sim.critical("pipeline:735:generate", f"Input text prompt {index + 1} is not safe")
            else:
                safe.append(Plan(sample, sample.prompt))
        if not safe:
            sim.critical("pipeline:738:generate", "All prompts failed safety checks")
            return None
        sim.info("pipeline:745:generate", "Running text embedding on all prompts")
        for _ in range(0, len(safe), min(len(samples), 8)):
            sim.info("pipeline:758:generate", "Starting T5 compute")
            sim.spend(T5_OFFLOADED if cfg.offload_text_encoder_model else T5)
            sim.info("pipeline:760:generate", "Completed T5 compute")
        sim.info("pipeline:768:generate", "Finish text embedding on prompt")
        sim.info("pipeline:771:generate", "Run generation")
        self.run_model(safe)
        sim.info("pipeline:786:generate", "Finish generation")
        sim.info("pipeline:788:generate", "Run guardrail on generated videos")
        passed = []
        for index, plan in enumerate(safe):
            sim.spend(VIDEO_GUARDRAIL)
            if sim.fail == "video_guardrail":
                sim.critical(
                    "presets:71:run_video_guardrail",
                    "GUARDRAIL BLOCKED: VIDEOCONTENTSAFETYFILTER: unsafe frames detected",
                )
                sim.critical("pipeline:797:generate", f"Generated video {index + 1} is not safe")
            else:
                passed.append(plan)
        if not passed:
            sim.critical("pipeline:799:generate", "All generated videos failed safety checks")
            return None
        return passed

    def run_model(self, plans):
        sim, distilled = self.sim, self.cfg.use_distilled
        lines = RUN_MODEL_LINES[distilled]
        if distilled:  # a leftover print() in the distilled pipeline
            write_flush(sys.stdout, f"video paths: {[plan.sample.video for plan in plans]}\n")
        sim.info(f"pipeline:{lines['augment']}:_run_model", "Starting data augmentation")
        if distilled:
            sim.info(
                "pipeline:1339:_run_model",
                "Regional prompts not supported when using distilled model, dropping: "
                f"{self.regional_prompts}",
            )
        else:
            sim.info(
                "pipeline:487:_run_model", f"regional_prompts passed to _run_model: {self.regional_prompts}"
            )
            sim.info(
                "pipeline:488:_run_model",
                f"region_definitions passed to _run_model: {self.region_definitions}",
            )
        with sim.phase(DATA_AUGMENTATION):
            for plan in plans:
                self.plan_sample(plan)
        sim.info(f"pipeline:{lines['augmented']}:_run_model", "Completed data augmentation")
        clips = max(plan.clips for plan in plans)
        if distilled:
            sim.info("pipeline:1386:_run_model", f"N_clip: {clips}")
        bar = Bar(clips)
        for _ in range(clips):
            self.run_clip(lines, len(plans), bar)
            bar.update()
        bar.close()

    def plan_sample(self, plan):
        """get_ctrl_batch: size and length from the input and every control video (min frame count)."""
        sim, sample = self.sim, plan.sample
        upscale = "upscale" in sample.controls
        if sample.video:
            info = probe(sample.video)
            plan.frames, plan.source_size = min(plan.frames, info.frames), (info.width, info.height)
            plan.size = output_size(info.width, info.height, sim.resolution_scale, upscale)
        for hint, spec in sample.controls.items():
            if "input_control" in spec:
                path = spec["input_control"]
                sim.info("utils:610:get_ctrl_batch", f"reading control input {path} for hint {hint}")
                info = probe(path)
                plan.frames = min(plan.frames, info.frames)
                if not sample.video:
                    plan.size = output_size(info.width, info.height, sim.resolution_scale, upscale)
                    plan.source_size = (info.width, info.height)
                plan.reads.append((hint, path, spec.get("control_weight")))
        sim.info(
            "utils:632:get_ctrl_batch",
            f"Making all control and input videos to be length of {plan.frames} frames.",
        )

    def run_clip(self, lines, batch, bar):
        sim, cfg = self.sim, self.cfg
        if cfg.use_distilled:
            diffusion = DISTILLED_DIFFUSION
        else:
            diffusion = (
                cfg.num_steps * SECONDS_PER_STEP * (1 + EXTRA_HINT_COST * (len(self.control_inputs) - 1))
            )
        if "upscale" in self.control_inputs:
            diffusion *= UPSCALE_PATCHES
        sim.info(f"pipeline:{lines['latent']}:_run_model", "Starting latent encoding")
        sim.spend(LATENT_ENCODE * batch)
        sim.info(f"pipeline:{lines['latent_done']}:_run_model", "Completed latent encoding")
        sim.info(f"pipeline:{lines['diffusion']}:_run_model", "Starting diffusion sampling")
        if sim.fail == "oom":
            sim.spend(5)
            bar.close()
            raise Crash(OOM_STACK, OOM_MESSAGE)
        sim.spend(diffusion * batch / max(1, cfg.num_gpus))  # context parallelism splits the frames
        sim.info(f"pipeline:{lines['diffusion_done']}:_run_model", "Completed diffusion sampling")
        sim.info(f"pipeline:{lines['decode']}:_run_model", "Starting VAE decode")
        if sim.fail == "crash":
            sim.spend(VAE_DECODE / 3)
            bar.close()
            raise Crash(VAE_STACK, ILLEGAL_ACCESS_MESSAGE)
        sim.spend(VAE_DECODE * batch)
        sim.info(f"pipeline:{lines['decode_done']}:_run_model", "Completed VAE decode")
