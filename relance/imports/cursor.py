"""The resume cursor of a batched import: ``<file>.relance-cursor`` next to the file.

Written after each committed batch (write to a temporary file, then rename, so a
crash never leaves half a cursor); removed once the whole file is imported.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from relance.imports.errors import ImportFileError

SUFFIX = ".relance-cursor"


def cursor_path(file: Path) -> Path:
    return file.with_name(file.name + SUFFIX)


@dataclass
class Cursor:
    size: int  # of the file: a different file is not resumed
    head_sha256: str  # of its first 64 KB
    offset: int  # byte offset just after the last committed row
    line: int  # lines of the file up to that offset
    encoding: str
    separator: str
    accepted: int = 0
    updated: int = 0
    excluded_three_year_rule: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def save(self, path: Path) -> None:
        draft = path.with_name(path.name + ".tmp")
        draft.write_text(json.dumps(asdict(self), ensure_ascii=False))
        os.replace(draft, path)

    @classmethod
    def load(cls, path: Path) -> Cursor:
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            raise ImportFileError(
                f"nothing to resume: {path} does not exist; import the file without --resume"
            ) from None
        except (ValueError, TypeError) as error:
            raise ImportFileError(
                f"the cursor {path} is damaged ({error}): delete it and import the file again "
                "(contacts already imported are updated, not duplicated)"
            ) from None
