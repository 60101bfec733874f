"""vLLM's offline ``LLM`` as Reason1 and the prompt upsampler see it: engine start-up, one request, failures.

Its logger writes ``INFO MM-DD HH:MM:SS [file.py:N] message`` lines on stdout, from the level
``VLLM_LOGGING_LEVEL`` names up (INFO unless set; Reason1's script sets ERROR, so a normal start-up
prints none); its bars (the weight shards, "Adding requests", "Processed prompts" with token speeds)
go to stderr whatever the level. Start-up takes most of the time (weights,
the memory profile, the KV cache). Failures: CUDA OOM while the engine profiles its memory (--fail oom),
an illegal memory access in the engine core while generating (crash), a model folder without config.json
(missing_checkpoint).
"""

import os
import sys
import time
from dataclasses import dataclass

from .common import Bar, Crash, interval, write_flush

VLLM = "/usr/local/lib/python3.12/dist-packages/vllm"
FILES = {
    "llm": f"{VLLM}/entrypoints/llm.py",
    "llm_engine": f"{VLLM}/v1/engine/llm_engine.py",
    "core_client": f"{VLLM}/v1/engine/core_client.py",
    "arg_utils": f"{VLLM}/engine/arg_utils.py",
    "config": f"{VLLM}/config/__init__.py",
    "transformers_config": f"{VLLM}/transformers_utils/config.py",
}
OOM_TEXT = (
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.32 GiB. GPU 0 has a total capacity of "
    "39.49 GiB of which 1.17 GiB is free. Including non-PyTorch memory, this process has 38.30 GiB memory in "
    "use. Of the allocated memory 36.77 GiB is allocated by PyTorch, and 1.02 GiB is reserved by PyTorch but "
    "unallocated. If reserved but unallocated memory is large try setting "
    "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for Memory "
    "Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)"
)

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


def logs_at(level):
    """Whether vLLM's logger prints lines of ``level``, as VLLM_LOGGING_LEVEL decides (INFO when unset)."""
    configured = os.environ.get("VLLM_LOGGING_LEVEL", "INFO").upper()
    return LEVELS.get(level, LEVELS["INFO"]) >= LEVELS.get(configured, LEVELS["INFO"])


@dataclass
class Engine:
    """One vllm.LLM(...): ``model`` as given, ``version`` of vLLM, the call site that builds it."""

    sim: object
    model: str
    version: str
    max_model_len: int
    caller: list  # the script's frames down to the LLM(...) call
    options: dict

    def log(self, file, line, message, level="INFO"):
        if not logs_at(level):
            return
        stamp = time.strftime("%m-%d %H:%M:%S")
        write_flush(sys.stdout, f"{level} {stamp} [{file}:{line}] {message}\n")

    def start(self, load_seconds, profile_seconds):
        """LLM.__init__: configuration, the weights, the memory profile and the KV cache."""
        sim = self.sim
        self.log("utils.py", 326, f"non-default args: {self.options}")
        sim.spend(3)
        if sim.fail == "missing_checkpoint":
            raise self.missing()
        self._log_engine_config()
        self._load_weights(load_seconds)
        self._profile_memory(profile_seconds)

    def _log_engine_config(self):
        """The task, the length and the engine's whole configuration, as vLLM logs them."""
        self.log(
            "config.py",
            717,
            "This model supports multiple tasks: {'classify', 'embed', 'generate', 'reward'}. "
            "Defaulting to 'generate'.",
        )
        self.log("config.py", 1604, f"Using max model len {self.max_model_len}")
        self.log(
            "core.py",
            71,
            f"Initializing a V1 LLM engine (v{self.version}) with config: model={self.model!r}, "
            f"speculative_config=None, tokenizer={self.model!r}, skip_tokenizer_init=False, "
            f"tokenizer_mode={self.options.get('tokenizer_mode', 'auto')}, revision=None, "
            "trust_remote_code=False, "
            f"dtype=torch.bfloat16, max_seq_len={self.max_model_len}, download_dir=None, load_format=auto, "
            "tensor_parallel_size=1, pipeline_parallel_size=1, quantization=None, "
            f"enforce_eager={self.options.get('enforce_eager', False)}, kv_cache_dtype=auto, "
            "device_config=cuda, "
            f"seed=0, served_model_name={self.model}",
        )
        self.log(
            "parallel_state.py",
            1134,
            "rank 0 in world size 1 is assigned as DP rank 0, PP rank 0, TP rank 0, EP rank 0",
        )

    def _load_weights(self, load_seconds):
        """The weight shards' bar on stderr, then how long loading took."""
        sim = self.sim
        self.log("gpu_model_runner.py", 1953, f"Starting to load model {self.model}...")
        self.log("cuda.py", 328, "Using Flash Attention backend on V1 engine.")
        self.log("weight_utils.py", 296, "Using model weights format ['*.safetensors']")
        start = time.monotonic()
        for shard in range(5):  # vLLM's own bar format ends in a newline: one line an update
            if shard:
                sim.spend(load_seconds * 0.8 / 4)
            elapsed = time.monotonic() - start
            write_flush(
                sys.stderr,
                f"\rLoading safetensors checkpoint shards: {shard * 25:3d}% Completed | "
                f"{shard}/4 [{interval(elapsed)}<{'00:00' if shard == 4 else '?'}, ?it/s]\n",
            )
        self.log("default_loader.py", 262, f"Loading weights took {load_seconds * 0.8:.2f} seconds")
        self.log(
            "gpu_model_runner.py", 2007, f"Model loading took 15.6451 GiB and {load_seconds:.6f} seconds"
        )

    def _profile_memory(self, profile_seconds):
        """The memory profile (where --fail oom strikes), then the KV cache's size."""
        sim = self.sim
        if "limit_mm_per_prompt" in self.options:
            self.log(
                "gpu_model_runner.py",
                2591,
                "Encoder cache will be initialized with a budget of 16384 tokens, "
                "and profiled with 1 video items of the maximum feature size.",
            )
        sim.spend(profile_seconds / 2)
        if sim.fail == "oom":
            raise self.engine_failure(
                "EngineCore failed to start.",
                OOM_TEXT,
                "profile_run",
                "RuntimeError: Engine core initialization failed. See root cause above. "
                "Failed core proc(s): {}",
            )
        self.log("gpu_worker.py", 276, "Available KV cache memory: 50.12 GiB")
        self.log("kv_cache_utils.py", 849, "GPU KV cache size: 938,528 tokens")
        concurrency = 938528 / self.max_model_len
        self.log(
            "kv_cache_utils.py",
            853,
            f"Maximum concurrency for {self.max_model_len:,} tokens per request: {concurrency:.2f}x",
        )
        sim.spend(profile_seconds / 2)
        self.log(
            "core.py",
            214,
            f"init engine (profile, create KV cache, warmup model) took {profile_seconds:.2f} seconds",
        )

    def generate(self, prompt_tokens, output_tokens, seconds):
        """LLM.generate/chat: the "Processed prompts" bar with token speeds, over ``seconds``."""

        def speeds(done, elapsed):
            rate_in = prompt_tokens * done / elapsed if done and elapsed else 0.0
            rate_out = output_tokens * done / elapsed if done and elapsed else 0.0
            return f"est. speed input: {rate_in:.2f} toks/s, output: {rate_out:.2f} toks/s"

        added = Bar(1, "Adding requests")
        added.update()
        added.close()
        bar = Bar(1, "Processed prompts", postfix=speeds)
        self.sim.spend(seconds / 2)
        if self.sim.fail == "crash":
            bar.close()
            raise self.engine_failure(
                "EngineCore encountered a fatal error.",
                "RuntimeError: CUDA error: an illegal memory access was encountered\n"
                "CUDA kernel errors might be "
                "asynchronously reported at some other API call, so the stacktrace below might be incorrect.",
                "execute_model",
                "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. See stack trace "
                "(above) for the root cause.",
            )
        self.sim.spend(seconds / 2)
        bar.update()
        bar.close()

    def engine_failure(self, headline, cause, where, error):
        """The engine core logs its own traceback (ERROR lines on stdout), then the caller's fails."""
        self.log("core.py", 700, headline, "ERROR")
        self.log("core.py", 700, "Traceback (most recent call last):", "ERROR")
        self.log("core.py", 700, f'  File "{VLLM}/v1/engine/core.py", line 691, in run_engine_core', "ERROR")
        self.log("core.py", 700, f'  File "{VLLM}/v1/worker/gpu_worker.py", line 243, in {where}', "ERROR")
        for line in cause.split("\n"):
            self.log("core.py", 700, line, "ERROR")
        frames = [*self.caller, ("llm:273:__init__", "self.llm_engine = LLMEngine.from_engine_args(")]
        frames.append(("llm_engine:169:from_engine_args", "return cls(vllm_config=vllm_config,"))
        frames.append(
            ("core_client:80:make_client", "return SyncMPClient(vllm_config, executor_class, log_stats)")
        )
        return Crash(frames, error)

    def missing(self):
        frames = [*self.caller, ("llm:253:__init__", "self.llm_engine = LLMEngine.from_engine_args(")]
        frames.append(("arg_utils:1079:create_model_config", "return ModelConfig("))
        frames.append(("transformers_config:336:get_config", "raise ValueError("))
        return Crash(
            frames,
            f"ValueError: Invalid repository ID or local directory specified: '{self.model}'.\n"
            "Please verify the following requirements:\n"
            "1. Provide a valid Hugging Face repository ID.\n"
            "2. Specify a local directory that contains a recognized configuration file.\n"
            "   - For Hugging Face models: ensure the presence of a 'config.json'.\n"
            "   - For Mistral models: ensure the presence of a 'params.json'.",
        )
