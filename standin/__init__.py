"""GPU-less stand-ins for NVIDIA Cosmos models' inference scripts.

Each behaves like the real script run in the Cosmos container (under torchrun where our launcher uses
it): the same arguments and spec validation, the real log lines (loguru on stdout, tqdm on stderr), the
phase durations of a 1xH100 run (scaled), real outputs (H.264 videos that visibly depend on their
inputs, text answers derived from the video's content) and the real failure texts. It imports only the
standard library, numpy and PyAV, so it runs on a remote host as one file (a zipapp, built by
cosmos/standin_archive.py); it never imports Django or the project.

Usage:
    python <standin.pyz | standin> [--time-scale X] [--resolution-scale Y] [--fail MODE] \\
        (<script path> | -m <module>) <script args...>

Stand-in options (before the script path; each falls back to an environment variable; the flag wins):
    --time-scale X        COSMOS_SIM_TIME_SCALE (1.0): multiplies every simulated duration; 0 = no waiting
    --resolution-scale Y  COSMOS_SIM_RESOLUTION_SCALE (1.0): multiplies the size of outputs at a model's
                          own resolution (x16, >= 64); outputs sized like their input (Transfer2.5 keeps
                          the input's resolution) are not scaled
    --fail MODE           COSMOS_SIM_FAIL (none): one of
                          oom                 CUDA out of memory (diffusion models: at the first diffusion
                                              step; vLLM models: while the engine profiles memory)
                          crash               CUDA illegal memory access (first VAE decode; vLLM: in the
                                              engine core while generating)
                          missing_checkpoint  the model's weights are not there (Transfer1: FileNotFoundError
                                              on base_model.pt; 2.5 and Cosmos 3: the Hugging Face CLI's
                                              404, "File not found in repository." / "Model '<repo>' not
                                              found."; vLLM models: no config.json in the model folder)
                          video_guardrail     the generated video fails the video safety filter
                          gated               Transfer2.5/Predict2.5/Cosmos 3: Hugging Face refuses the
                                              gated download ("Error: Access denied. ... requires
                                              approval."); Reason2: the gated model's files (401,
                                              "Cannot access gated repo")
                          hub_unreachable     Transfer2.5/Predict2.5/Cosmos 3: the first download cannot
                                              reach Hugging Face ("Error: Local entry not found. [Errno -3]
                                              Temporary failure in name resolution")
                          The 2.5 and Cosmos 3 download failures print what `hf download` prints
                          (standin/hf_cli.py), then the downloader's CalledProcessError.
                          nccl_timeout        Cosmos 3 under torchrun (WORLD_SIZE > 1): the bar stops
                                              mid-way, and after the 1800 s process-group timeout the
                                              NCCL watchdog aborts the ranks (SIGABRT)
                          A mode a model has no such failure for is ignored. Under torchrun the failures
                          end with torchrun's ChildFailedError report; every failure exits non-zero.

Scripts (the first argument after the stand-in options), each followed by the script's own arguments:
    cosmos_transfer1/diffusion/inference/transfer.py        Cosmos-Transfer1 (also the 4K upscaler: the
                                                            "upscale" hint)          -> transfer1
    examples/inference.py                                   Cosmos-Transfer2.5      -> transfer25
    examples/inference.py --inference-type=...              Cosmos-Predict2.5       -> predict25
    scripts/inference.py                                    Cosmos-Reason1          -> reason1
    cosmos_transfer1/auxiliary/upsampler/inference/upsampler_pipeline.py
                                                            Transfer1's prompt upsampler -> upsampler
    -m cosmos_framework.scripts.inference                   Cosmos 3 (Nano, Edge, Super...) -> cosmos3;
                                                            several ranks when WORLD_SIZE > 1
    -m cosmos_reason2_utils.script.inference offline ...    Cosmos-Reason2 (2B, 8B, 32B) -> reason2
    Any other script path prints a message on stderr and exits 2. Each module's docstring describes its
    arguments, outputs and what it leaves out.

Other environment:
    WORLD_SIZE             Cosmos 3: the number of torchrun ranks the one process plays (default 1)
    HF_HOME, HF_HUB_CACHE  Cosmos 3: the Hugging Face cache that says whether a download is a first one
    VLLM_LOGGING_LEVEL     Reason2: vLLM's INFO lines show only when it is INFO or DEBUG (the script sets
                           ERROR when it is unset)
    DISABLE_TQDM           Cosmos 3: "1" hides the Sampling bars, as in the real framework
    COSMOS_TRAINING        Cosmos 3: "1" lets a local DCP checkpoint folder (.metadata) load
    COSMOS_SIM_LAUNCH_LOG  if set, one JSON line per process start is appended to that file:
                           {"time": epoch, "pid": ..., "argv": [...], "script": ...,
                            "video_save_folder": where the outputs go (None: stdout only)}

Prompt guardrails: a blocklist (whole words, case-insensitive; the real Cosmos list is far longer):
bleeding, lifeless, corpse, gore, decapitated, suicide, nude. An empty prompt is blocked too ("Input is
empty"), as in the real one. Each model reacts in its own words (Transfer1: CRITICAL lines then a
TypeError crash, exit 1; Transfer2.5/Predict2.5: the sample is skipped, exit 0 with --keep-going; Cosmos 3:
checked after the sample's bar, a ValueError ending the run unless --keep-going; transfer unchecked).
Reason1 and Reason2 have no guardrail.
"""
