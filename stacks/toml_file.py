"""Reading a TOML file a person wrote: every way it can fail is one line naming the file's problem.

Shared by the app's config (``stacks.config.load_config``, which ``cdk synth -c config=...`` and the
local deploy's ``--config`` use) and the local deploy's organization file (``--organization``).
TOML files are UTF-8 (https://toml.io/en/v1.0.0#spec); a byte-order mark, which Windows editors
write at the start, is skipped.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

BOM = "\ufeff"


def read_toml(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The file's tables, or None and what is wrong with the file (never an exception)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, "the file does not exist"
    except IsADirectoryError:
        return None, "is a directory, not a TOML file"
    except PermissionError:
        return None, "cannot be read (permission denied)"
    except OSError as error:
        return None, f"cannot be read ({error.strerror or error})"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        return None, (
            f"is not UTF-8 text: byte 0x{raw[error.start]:02x} on line {line} is not UTF-8 "
            "(TOML files are UTF-8: save the file as UTF-8 in your editor)"
        )
    try:
        return tomllib.loads(text.removeprefix(BOM)), None
    except tomllib.TOMLDecodeError as error:
        return None, f"not valid TOML: {error}"
