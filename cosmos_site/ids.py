"""Short, prefixed, random primary keys such as ``rs_7k2m9q4x1z8c``.

Prefixes tell a run from a prompt at a glance on the command line (`--like rs_…`). Twelve
characters of Crockford's base32 give 60 random bits: collisions are not a practical concern
for a team's lifetime of runs, and the alphabet has no 0/o or 1/l look-alikes.
"""

import secrets

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
ID_LENGTH = 12


def new_id(prefix: str) -> str:
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(ID_LENGTH))


def new_prompt_id() -> str:
    return new_id("ps")


def new_run_id() -> str:
    return new_id("rs")


def new_export_id() -> str:
    return new_id("ex")


def new_sweep_id() -> str:
    return new_id("sw")
