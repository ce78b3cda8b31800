"""The environment variables the README documents, read from its configuration
tables (the first column of every table under "## Configuration", by section),
so the deployment checks follow the README as rows are added.

`python3 deploy/tests/readme_vars.py` prints them by section.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

# Which README sections configure which binary (every service reads "Every service").
SECTIONS_OF = {
    "auth": ["Every service", "Auth service"],
    "tasks": ["Every service", "Cache", "Tasks service"],
    "files": ["Every service", "Files service"],
    "router": ["Every service", "Router"],
    "taskgraph": ["One process", "Every service", "Cache", "Router", "Auth service", "Tasks service", "Files service"],
}

# Variables set in docker-compose.yml and deploy/k8s before the README documents them
# (work landing in another branch at the same time). Once the README documents one,
# the check that it is still pending fails: remove it here.
PENDING: dict[str, str] = {}

_NAME = re.compile(r"`([A-Z][A-Z0-9_]*(?:<[A-Z]+>[A-Z0-9_]*)*\*?)`")


def sections(text: str | None = None) -> dict[str, dict[str, str]]:
    """{section title (up to its first parenthesis): {variable or pattern: its table row}}."""
    text = README.read_text() if text is None else text
    body = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    found: dict[str, dict[str, str]] = {}
    current = None
    for line in body.splitlines():
        if line.startswith("### "):
            current = line[4:].split(" (", 1)[0].strip()
            found[current] = {}
            continue
        if current is None or not line.startswith("| `"):
            continue
        first_cell = line.split("|")[1]
        for name in _NAME.findall(first_cell):
            found[current].setdefault(name, line)
    return found


def _pattern(name: str) -> re.Pattern[str]:
    escaped = re.escape(name).replace(r"\*", "[A-Z0-9_]*")
    return re.compile("^" + re.sub(r"<[A-Z]+>", "[A-Z0-9_]+", escaped) + "$")


def documented(service: str, all_sections: dict[str, dict[str, str]] | None = None) -> list[re.Pattern[str]]:
    """Patterns matching every variable the README documents for `service`."""
    all_sections = sections() if all_sections is None else all_sections
    names: list[str] = []
    for title in SECTIONS_OF[service]:
        names.extend(all_sections[title])
    return [_pattern(name) for name in names]


def is_documented(variable: str, patterns: list[re.Pattern[str]]) -> bool:
    return any(p.match(variable) for p in patterns)


def all_names(all_sections: dict[str, dict[str, str]] | None = None) -> list[str]:
    """Every documented name (patterns as written), first appearance first."""
    all_sections = sections() if all_sections is None else all_sections
    seen: dict[str, None] = {}
    for rows in all_sections.values():
        for name in rows:
            seen.setdefault(name, None)
    return list(seen)


if __name__ == "__main__":
    for title, rows in sections().items():
        print(f"## {title}")
        for name in rows:
            print(name)
    sys.exit(0)
