"""Reading the text files users hand us (predictions, results, summaries, rule files).

UTF-8 with or without a byte-order mark (editors on Windows write one), the same for every
input; a missing file, a folder or undecodable bytes is one line naming the file.
"""

from __future__ import annotations

from pathlib import Path

from robustness.errors import UserError


def read_text(path: str | Path, expected: str = "a file", hint: str = "") -> str:
    """The text of ``path`` (a leading BOM dropped); ``expected`` names what a folder is not."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file{hint}") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, expected {expected}") from None
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror or err})") from None
