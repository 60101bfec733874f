"""What the New run form shows for each model, written out by hand (issue 15): the unit tests and the
browser test compare the form against it, so a model that gains or loses a field is a decision.
"""

import re

# Every model's form has these; the text and input fields are worded for the model.
COMMON = {"prompt_text", "name", "model_type", "input_folder", "uploads", "node", "priority"}

MODEL_FIELDS: dict[str, set[str]] = {
    "cosmos3_nano": {
        "negative_prompt", "weight_edge", "weight_blur", "weight_depth", "weight_seg", "weight_wsm",
        "model_mode", "seed", "resolution", "aspect_ratio", "num_frames", "fps", "num_steps", "guidance",
        "control_guidance", "shift", "num_video_frames_per_chunk", "num_conditional_frames", "max_frames",
        "preset_edge_threshold", "preset_blur_strength", "enable_sound", "num_outputs", "num_gpus",
        "checkpoint_path", "disable_guardrails", "offload_guardrail_models",
    },
    # No transfers and no sound: none of their settings.
    "cosmos3_super": {
        "negative_prompt", "model_mode", "seed", "resolution", "aspect_ratio", "num_frames", "fps", "num_steps",
        "guidance", "shift", "num_outputs", "num_gpus", "checkpoint_path", "disable_guardrails",
        "offload_guardrail_models",
    },
    "transfer1": {
        "negative_prompt", "weight_vis", "weight_edge", "weight_depth", "weight_seg", "num_steps", "guidance",
        "seed", "sigma_max", "fps", "blur_strength", "canny_threshold", "num_gpus",
        "offload_diffusion_transformer", "offload_text_encoder_model", "offload_guardrail_models",
        "upsample_prompt", "offload_prompt_upsampler", "use_distilled",
    },
    "transfer2_5": {
        "negative_prompt", "weight_edge", "weight_vis", "weight_depth", "weight_seg", "seed", "guidance",
        "num_steps", "resolution", "num_conditional_frames", "preset_blur_strength", "preset_edge_threshold",
        "use_distilled", "disable_guardrails", "offload_guardrail_models", "num_gpus",
    },
    "predict2_5": {
        "negative_prompt", "inference_type", "model_variant", "seed", "guidance", "num_steps", "resolution",
        "num_output_frames", "enable_autoregressive", "disable_guardrails", "num_gpus",
        "offload_diffusion_model", "offload_tokenizer", "offload_text_encoder", "offload_guardrail_models",
    },
    # A question about a video: no negative prompt, no control weights; vision and sampling settings.
    "reason1": {"reasoning", "fps", "total_pixels", "max_tokens", "temperature", "seed"},
    "reason2": {
        "size", "reasoning", "fps", "max_model_len", "max_tokens", "temperature", "top_p", "top_k",
        "presence_penalty", "repetition_penalty", "seed",
    },
    "upscale4k": {
        "negative_prompt", "num_steps", "control_weight", "seed", "fps", "num_gpus",
        "offload_text_encoder_model", "offload_guardrail_models", "offload_diffusion_transformer",
    },
    "prompt_upsampler": {"offload_prompt_upsampler"},
}  # fmt: skip


def expected_fields(model: str) -> set[str]:
    return COMMON | MODEL_FIELDS[model]


def field_names(html: str) -> set[str]:
    """The names of a form's fields in its HTML (the CSRF token and the list of its switches aside)."""
    return set(re.findall(r'<(?:input|select|textarea)[^>]*\bname="([^"]+)"', html)) - {
        "csrfmiddlewaretoken",
        "_switches",
    }
