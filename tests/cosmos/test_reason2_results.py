"""Cosmos-Reason2's answer and its reasoning, read from what the script prints (offline and online forms)."""

from cosmos.profiles import profile_for
from cosmos.profiles.reason2 import parse_answer

HEADER = """--------------------
System:
  You are a helpful assistant.
--------------------
User:
  Is it safe?

  Answer the question using the following format:

  <think>
  Your reasoning.
  </think>

  Write your final answer immediately after the </think> tag.
--------------------
"""

# `offline`: the reasoning stays inside the answer.
OFFLINE = (
    HEADER
    + """--------------------
Assistant:
  <think>
  The robot arm moves near a person.

  It does not slow down.
  </think>

  No: the arm swings close to the worker.
--------------------
Inference time: 3.20 seconds
"""
)

# `online` (the repository's assets/outputs/caption.log shape): a separate Reasoning: block.
ONLINE = (
    HEADER
    + """--------------------
Reasoning:
  Okay, let's break this down. The arm moves near a person.
--------------------
Assistant:
  No: the arm swings close to the worker.
--------------------
Inference time: 2.10 seconds
"""
)


def test_it_splits_the_offline_think_block_from_the_answer():
    assert parse_answer(OFFLINE) == {
        "answer": "No: the arm swings close to the worker.",
        "reasoning": "The robot arm moves near a person.\n\nIt does not slow down.",
    }


def test_it_reads_the_separate_reasoning_block():
    assert parse_answer(ONLINE) == {
        "answer": "No: the arm swings close to the worker.",
        "reasoning": "Okay, let's break this down. The arm moves near a person.",
    }


def test_it_reads_an_answer_whose_opening_think_tag_the_model_dropped():
    log = "Assistant:\n  It is raining.\n  </think>\n\n  Yes, wipers are on.\n--------------------\n"
    assert parse_answer(log) == {"answer": "Yes, wipers are on.", "reasoning": "It is raining."}


def test_it_keeps_a_plain_answer_and_finds_none_in_a_crash():
    assert parse_answer("Assistant:\n  A red car drives left.\n--------------------\n") == {
        "answer": "A red car drives left."
    }
    assert parse_answer(HEADER + "Traceback (most recent call last):\n") == {}
    assert parse_answer("Assistant:\n  <think>\n  Only thinking.\n  </think>\n--------------------\n") == {}


def test_it_stores_the_answer_with_its_reasoning_beside_it():
    results = profile_for("reason2").results(OFFLINE)
    assert results["answer"] == "No: the arm swings close to the worker."
    assert results["reasoning"].startswith("The robot arm moves near a person.")
    assert results["files"]["answer.txt"] == (
        "No: the arm swings close to the worker.\n\nReasoning:\n"
        "The robot arm moves near a person.\n\nIt does not slow down.\n"
    )
    assert profile_for("reason2").produced(set(), run_id="rs_a", index=None, log_text=OFFLINE)
    assert not profile_for("reason2").produced(set(), run_id="rs_a", index=None, log_text=HEADER)
