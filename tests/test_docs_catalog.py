"""The docs keep up with the code: every feature ID a test proves is in docs/features.md, and
every package folder of relance/ is in the code map of docs/architecture.md."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
PACKAGE = ROOT / "relance"
FEATURES = ROOT / "docs" / "features.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

MARKER = re.compile(r"""\bfeature\(\s*["']([A-Z]-\d+)["']\s*\)""")
CATALOG_ROW = re.compile(r"^\|\s*([A-Z]-\d+)\s*\|", re.MULTILINE)
MAP_ENTRY = re.compile(r"`(relance/(?:[\w.]+/)*)`")


def marker_ids() -> set[str]:
    """The IDs of ``@pytest.mark.feature("X-NN")`` markers anywhere under tests/."""
    found: set[str] = set()
    for path in TESTS.rglob("*.py"):
        if path.resolve() == Path(__file__).resolve() or "__pycache__" in path.parts:
            continue
        found |= set(MARKER.findall(path.read_text(encoding="utf-8")))
    return found


def catalog_ids() -> set[str]:
    """The IDs that open a row of a table in docs/features.md."""
    return set(CATALOG_ROW.findall(FEATURES.read_text(encoding="utf-8")))


def package_folders() -> set[str]:
    """``relance/``, ``relance/models/tables/``, …: folders with an __init__.py."""
    folders: set[str] = set()
    for init in PACKAGE.rglob("__init__.py"):
        relative = init.parent.relative_to(ROOT)
        parts = relative.parts
        if "__pycache__" in parts or parts[1:3] == ("migrations", "versions"):
            continue
        folders.add("/".join(parts) + "/")
    return folders


def code_map_entries() -> set[str]:
    """Folders named (in backticks, with a trailing slash) in the "Code map" section."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    start = re.search(r"^## Code map\s*$", text, re.MULTILINE)
    assert start is not None, "docs/architecture.md has no '## Code map' section"
    rest = text[start.end() :]
    end = re.search(r"^## ", rest, re.MULTILINE)
    section = rest[: end.start()] if end else rest
    return set(MAP_ENTRY.findall(section))


def test_every_feature_id_a_test_marks_is_in_the_catalog() -> None:
    used = marker_ids()
    assert used, "no @pytest.mark.feature markers found under tests/"
    missing = sorted(used - catalog_ids())
    assert not missing, f"feature IDs used by test markers but missing from docs/features.md: {missing}"


def test_every_package_folder_is_in_the_code_map() -> None:
    folders = package_folders()
    assert "relance/" in folders and "relance/workflows/" in folders, folders
    missing = sorted(folders - code_map_entries())
    assert not missing, f"folders of relance/ missing from the code map of docs/architecture.md: {missing}"


def test_every_feature_id_the_code_cites_is_in_the_catalog() -> None:
    cited: dict[str, str] = {}
    for path in PACKAGE.rglob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for feature in re.findall(r"\b([A-Z]-\d{2})\b", line):
                cited.setdefault(feature, f"{path.relative_to(ROOT)}:{number}")
    assert len(cited) > 20
    missing = {feature: where for feature, where in cited.items() if feature not in catalog_ids()}
    assert not missing, f"cited in the code but not in docs/features.md: {missing}"
