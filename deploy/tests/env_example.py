"""Writes .env.example from the README: the compose variables (README, "Deploy")
set to their defaults, then every variable of the configuration tables, commented
out with its default, by section. `python3 deploy/tests/env_example.py` rewrites
the file; test_compose.py checks that it lists them all.
"""

from __future__ import annotations

import re

import readme_vars

HEADER = """\
# Copy to .env beside docker-compose.yml. Compose reads it for the ${...} in its
# files; the services' own settings below are not passed to containers from here:
# set them in a service's `environment:` (an override file, or deploy/k8s
# ConfigMaps). Generated from the README by deploy/tests/env_example.py.
"""


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def _plain(text: str) -> str:
    return re.sub(r"`([^`]*)`", r"\1", text).strip()


def compose_rows(text: str) -> list[tuple[str, str, str]]:
    """(variable, default, meaning) of the README's compose-variables table."""
    deploy = text.split("\n## Deploy\n", 1)[1].split("\n## ", 1)[0]
    table = deploy.split("| Compose variable |", 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in table.splitlines()[2:]:
        name, default, meaning = _cells(line)[:3]
        rows.append((_plain(name), _plain(default), _plain(meaning)))
    return rows


def render() -> str:
    text = readme_vars.README.read_text()
    out = [HEADER, "\n## Compose variables\n"]
    for name, default, meaning in compose_rows(text):
        out.append(f"# {meaning}\n{name}={'' if default in ('(empty)', 'none') else default}\n")
    seen: set[str] = set()
    for title, rows in readme_vars.sections(text).items():
        out.append(f"\n## {title} (README, Configuration)\n")
        for name, row in rows.items():
            if name in seen:
                continue
            seen.add(name)
            default = _plain(_cells(row)[1])
            # `A` / `B` | `1` / `2`: each its own default.
            names, defaults = readme_vars._NAME.findall(_cells(row)[0]), default.split(" / ")
            if len(names) == len(defaults) > 1:
                default = defaults[names.index(name)]
            out.append(f"# {name}={default}\n")
    if readme_vars.PENDING:
        out.append("\n## Arriving with other work (README rows to come)\n")
    for name, meaning in readme_vars.PENDING.items():
        out.append(f"# {name}=    {meaning}\n")
    return "".join(out)


if __name__ == "__main__":
    (readme_vars.ROOT / ".env.example").write_text(render())
