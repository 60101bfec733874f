"""What every simulated model shares: the clock, loguru's line format, tqdm bars, tracebacks, torchrun.

Durations go through ``Sim.spend``/``Sim.phase``, scaled by ``--time-scale``; log lines through
``Sim.log``, which writes loguru's ``[MM-DD HH:mm:ss|LEVEL|path:line:function] message`` to stdout and to
any extra sinks (Transfer2.5's console.log and debug.log). A call site is ``"<file>:<line>:<function>"``
where ``<file>`` is a short name from ``Sim.files`` (each model's own table) or a path as printed.
"""

import contextlib
import datetime
import os
import re
import socket
import sys
import time
from dataclasses import dataclass, field

TORCH = "/usr/local/lib/python3.12/dist-packages/torch"
SIGNAL_NAMES = {6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 15: "SIGTERM"}
LEVELS = ("DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")

# The stand-in's prompt blocklist (whole words, case-insensitive); the real Cosmos list is far longer.
BLOCKLIST = ("bleeding", "lifeless", "corpse", "gore", "decapitated", "suicide", "nude")

OOM_MESSAGE = (
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 71.19 GiB. GPU 0 has a total capacity of "
    "79.18 GiB of which 48.84 GiB is free. Including non-PyTorch memory, this process has 30.33 GiB memory "
    "in use. Of the allocated memory 28.02 GiB is allocated by PyTorch, and 1.63 GiB is reserved by PyTorch "
    "but unallocated. If reserved but unallocated memory is large try setting "
    "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for Memory "
    "Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)"
)
ILLEGAL_ACCESS_MESSAGE = (
    "RuntimeError: CUDA error: an illegal memory access was encountered\n"
    "CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below "
    "might be incorrect.\nFor debugging consider passing CUDA_LAUNCH_BLOCKING=1\n"
    "Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.\n"
)


class Crash(Exception):
    """The real process dies here with this call stack and exception text (``context``: chained cause).

    ``frames`` are ``(call site, source line)`` pairs, call sites as in ``Sim.log``; ``prelude`` is text
    the process writes to stderr before its traceback (a child process's own error, say).
    Under torchrun with several ranks: ``every_rank`` says each rank hits the same error itself (a bad
    spec), else the other ranks only learn that one failed; ``signal`` is a process killed by a signal
    (an NCCL watchdog's abort), which prints no traceback, only its prelude.
    """

    def __init__(self, frames, error, context=None, prelude="", *, every_rank=False, signal=None):
        super().__init__(error)
        self.frames, self.error, self.context, self.prelude = frames, error, context, prelude
        self.every_rank, self.signal = every_rank, signal


def error_text(exc):
    """An exception's last traceback line, qualified the way Python prints it."""
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    return f"{name}: {exc}" if str(exc) else name


def write_flush(stream, text):
    stream.write(text)
    stream.flush()


@dataclass
class Sink:
    """An extra log file: everything (debug.log) or only what the console shows (console.log)."""

    handle: object
    everything: bool


@dataclass
class Sim:
    """The stand-in's options plus the log and the clock every phase goes through."""

    time_scale: float
    resolution_scale: float
    fail: str
    script: str
    files: dict = field(default_factory=dict)  # short name -> path printed in call sites
    sinks: list = field(default_factory=list)
    job: str | None = None  # loguru's "job=<name>|" segment, for the models whose format has one
    # The 2.5 models' COSMOS_VERBOSE: the console shows every line, DEBUG and internal ones too
    # (console.log keeps its filter).
    verbose: bool = False

    def path(self, name):
        return self.files.get(name, name)

    def log(self, level, site, message, *, console=True, files=True):
        """loguru's sink: ``[MM-DD HH:mm:ss|LEVEL|path:line:function] message`` (with ``job=<name>|``
        before the level when ``job`` is set); multi-line messages continue without a prefix.
        ``console=False``: a message the console filter hides (debug.log only, and the console when
        ``verbose``); ``files=False``: one another rank prints, which rank 0's log files never see."""
        name, _, rest = site.partition(":")
        job = "" if self.job is None else f"job={self.job}|"
        line = f"[{time.strftime('%m-%d %H:%M:%S')}|{job}{level}|{self.path(name)}:{rest}] {message}\n"
        shown = console and level != "DEBUG"
        if shown or self.verbose:
            write_flush(sys.stdout, line)
        for sink in self.sinks if files else ():
            if sink.everything or shown:
                write_flush(sink.handle, line)

    def debug(self, site, message):
        self.log("DEBUG", site, message)

    def info(self, site, message, *, console=True):
        self.log("INFO", site, message, console=console)

    def success(self, site, message):
        self.log("SUCCESS", site, message)

    def warning(self, site, message):
        self.log("WARNING", site, message)

    def critical(self, site, message, *, console=True):
        self.log("CRITICAL", site, message, console=console)

    def spend(self, seconds):
        if seconds * self.time_scale > 0:
            time.sleep(seconds * self.time_scale)

    @contextlib.contextmanager
    def phase(self, seconds):
        """Real work inside a simulated phase counts towards its duration; only the rest is slept."""
        start = time.monotonic()
        yield
        left = seconds * self.time_scale - (time.monotonic() - start)
        if left > 0:
            time.sleep(left)

    def close_sinks(self):
        for sink in self.sinks:
            with contextlib.suppress(OSError):
                sink.handle.close()
        self.sinks = []


class Bar:
    """tqdm's bar as written to a pipe: width 10, ``\\r`` updates, a newline when closed.

    ``desc`` prefixes it (``Generating samples: ``); ``postfix`` (a function of n and elapsed seconds)
    is appended inside the brackets, as vLLM's token speeds are.
    """

    CHARS = " " + "".join(map(chr, range(0x258F, 0x2587, -1)))

    def __init__(self, total, desc="", postfix=None):
        self.total, self.desc, self.postfix = total, desc, postfix
        self.n, self.start, self.last_len, self.closed = 0, time.monotonic(), 0, False
        self.show()

    def update(self, steps=1):
        self.n += steps
        self.show()

    def close(self):
        if not self.closed:
            self.closed = True
            write_flush(sys.stderr, "\n")

    def show(self):
        elapsed = time.monotonic() - self.start
        rate = self.n / elapsed if self.n and elapsed > 0 else None
        remaining = interval((self.total - self.n) / rate) if rate else "?"
        rate_text = "?it/s" if rate is None else f"{1 / rate:5.2f}s/it" if rate < 1 else f"{rate:5.2f}it/s"
        full, part = divmod(int(self.n / self.total * 10 * 8), 8)
        bar = self.CHARS[-1] * full + (self.CHARS[part] + " " * (9 - full) if full < 10 else "")
        text = f"{self.desc}: " if self.desc else ""
        text += f"{self.n / self.total * 100:3.0f}%|{bar}| {self.n}/{self.total} "
        text += f"[{interval(elapsed)}<{remaining}, {rate_text}"
        text += f", {self.postfix(self.n, elapsed)}]" if self.postfix else "]"
        write_flush(sys.stderr, "\r" + text + " " * max(self.last_len - len(text), 0))
        self.last_len = len(text)


def interval(seconds):
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def blocklist_reason(prompt):
    """Why the blocklist guardrail rejects a prompt ("" = safe); whole-word exact matches only."""
    if not prompt:
        return "Input is empty"
    prompt = re.sub(r"[^\x00-\x7F]+", " ", prompt)
    normalized = re.sub(r"\s+", " ", prompt).strip().lower()
    for word in BLOCKLIST:
        if re.search(r"\b" + re.escape(word) + r"\b", normalized):
            return f"Prompt blocked by exact match blocklist: Prompt: {prompt}, Exact Match Word: {word}"
    return ""


def traceback_lines(crash, files):
    lines = []
    if crash.context is not None:
        lines += traceback_lines(crash.context, files)
        lines += ["", "During handling of the above exception, another exception occurred:", ""]
    lines.append("Traceback (most recent call last):")
    for site, source in crash.frames:
        name, line, function = site.split(":")
        path = files.get(name, name)
        if not path.startswith("<"):  # "<frozen os>" stays; absolute paths stay as they are
            path = os.path.join(os.getcwd(), path)
        lines.append(f'  File "{path}", line {line}, in {function}')
        lines += [f"    {source}"] if source else []
    return lines + crash.error.split("\n")


def torchrun_report(script, exitcode=1, *, ranks=1, signal=None):
    """What torchrun prints after its workers exited with ``exitcode`` (rank 0 first; with several
    ``ranks`` the others are listed as further failures; ``signal``: rank 0 was killed by it)."""
    now, pid = datetime.datetime.now(), os.getpid()
    if signal is not None:
        exitcode = -signal
    lines = [
        f"E{now:%m%d %H:%M:%S.%f} {os.getppid()} torch/distributed/elastic/multiprocessing/api.py:874] "
        f"failed (exitcode: {exitcode}) local_rank: 0 (pid: {pid}) of binary: {sys.executable}",
        "Traceback (most recent call last):",
        '  File "/usr/local/bin/torchrun", line 8, in <module>',
        "    sys.exit(main())",
        "             ^^^^^^",
        f'  File "{TORCH}/distributed/elastic/multiprocessing/errors/__init__.py", line 355, in wrapper',
        "    return f(*args, **kwargs)",
        "           ^^^^^^^^^^^^^^^^^^",
        f'  File "{TORCH}/distributed/run.py", line 892, in main',
        "    run(args)",
        f'  File "{TORCH}/distributed/run.py", line 883, in run',
        "    elastic_launch(",
        f'  File "{TORCH}/distributed/launcher/api.py", line 139, in __call__',
        "    return launch_agent(self._config, self._entrypoint, list(args))",
        "           " + "^" * 56,
        f'  File "{TORCH}/distributed/launcher/api.py", line 270, in launch_agent',
        "    raise ChildFailedError(",
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ",
        "=" * 60,
        f"{script} FAILED",
        "-" * 60,
        "Failures:",
        *(failure_entry(rank, now, pid + rank, 1) for rank in range(1, ranks)),
        *(["  <NO_OTHER_FAILURES>"] if ranks == 1 else []),
        "-" * 60,
        "Root Cause (first observed failure):",
        failure_entry(0, now, pid, exitcode, signal),
        "=" * 60,
    ]
    write_flush(sys.stderr, "\n".join(lines) + "\n")


def failure_entry(rank, now, pid, exitcode, signal=None):
    if signal is None:
        cause = "To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html"
    else:
        cause = f"Signal {signal} ({SIGNAL_NAMES.get(signal, 'SIG?')}) received by PID {pid}"
    return "\n".join(
        [
            f"[{rank}]:",
            f"  time      : {now:%Y-%m-%d_%H:%M:%S}",
            f"  host      : {socket.gethostname()}",
            f"  rank      : {rank} (local_rank: {rank})",
            f"  exitcode  : {exitcode} (pid: {pid})",
            "  error_file: <N/A>",
            f"  traceback : {cause}",
        ]
    )


def vllm_platform_line():
    """vLLM's import-time line, printed by every model that imports it."""
    stamp = time.strftime("%m-%d %H:%M:%S")
    write_flush(sys.stdout, f"INFO {stamp} [__init__.py:243] Automatically detected platform cuda.\n")
