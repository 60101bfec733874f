from cosmos.logs import LogRecord, LogStream, ProgressBar, TextLine


def events_of(*chunks: bytes) -> list:
    stream = LogStream()
    events = [event for chunk in chunks for event in stream.feed(chunk)]
    return events + stream.close()


def test_it_parses_a_loguru_line():
    (event,) = events_of(
        b"[07-01 11:26:49|INFO|cosmos_transfer1/diffusion/inference/world_generation_pipeline.py:637:_run_model]"
        b" Starting diffusion sampling\n"
    )
    assert event == LogRecord(
        level="INFO",
        path="cosmos_transfer1/diffusion/inference/world_generation_pipeline.py",
        function="_run_model",
        message="Starting diffusion sampling",
    )


def test_it_strips_ansi_colour_codes():
    (event,) = events_of(
        b"[\x1b[32m07-01 11:26:49\x1b[0m|\x1b[1mSUCCESS\x1b[0m|\x1b[36ma.py:1:f\x1b[0m] done\n"
    )
    assert event == LogRecord(level="SUCCESS", path="a.py", function="f", message="done")


def test_it_splits_progress_bar_refreshes_on_carriage_returns():
    events = events_of(
        b"  0%|          | 0/2 [00:00<?, ?it/s]\r 50%|\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88     | 1/2 [06:12<06:12, 372.10s/it]\n"
    )
    assert events == [ProgressBar("", 0, 2), ProgressBar("", 1, 2)]


def test_it_reads_described_bars():
    (event,) = events_of(b"Generating samples:  40%|####      | 14/35 [01:45<02:38,  7.53s/it]\n")
    assert event == ProgressBar("Generating samples", 14, 35)


def test_it_separates_a_bar_fragment_glued_to_a_log_line():
    events = events_of(
        b"  0%|          | 0/1 [00:00<?, ?it/s][07-01 11:26:45|INFO|a.py:583:_run_model] Starting latent encoding\n"
    )
    assert events == [
        ProgressBar("", 0, 1),
        LogRecord(level="INFO", path="a.py", function="_run_model", message="Starting latent encoding"),
    ]


def test_it_keeps_multi_line_message_continuations_as_text():
    events = events_of(b'[11-21 12:00:14|INFO|t.py:187:parse_arguments] final args: {\n    "seed": 1\n}\n')
    assert events == [
        LogRecord(level="INFO", path="t.py", function="parse_arguments", message="final args: {"),
        TextLine('    "seed": 1'),
        TextLine("}"),
    ]


def test_it_reassembles_lines_and_utf8_split_across_chunks():
    line = "[11-21 12:00:14|INFO|t.py:1:f] Saved prompt to out/caf\u00e9.txt\n".encode()
    cut = line.index(b"\xc3") + 1  # inside the two-byte é
    events = events_of(line[:10], line[10:cut], line[cut:])
    assert events == [
        LogRecord(level="INFO", path="t.py", function="f", message="Saved prompt to out/café.txt")
    ]


def test_it_reads_a_last_line_without_newline_on_close():
    assert events_of(b"[11-21 12:00:14|INFO|t.py:1:f] last") == [
        LogRecord(level="INFO", path="t.py", function="f", message="last")
    ]


def test_it_reads_the_multi_node_machine_prefix():
    (event,) = events_of(b"[11-21 12:00:14|[Node0  /1  ][RANK0    /2    ][MainProc]| INFO|t.py:1:f] hello\n")
    assert event.message == "hello"
