"""Reading compose files as `docker compose` does, for the checks (no Docker
engine, nor the compose plugin, runs here): `${VAR}` interpolation with
`:-default`, `-default`, `:?error` and `?error`, YAML merge keys, and the
Compose Specification's merge rules for several `-f` files.

`python3 deploy/tests/compose.py OUT FILE...` writes the merged result as JSON
(for check-jsonschema), with the interpolation variables from the environment.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from pathlib import Path

import yaml

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")

# Sequences the spec merges by union rather than replacement.
_UNION = {"ports", "expose", "external_links", "dns", "dns_search", "tmpfs", "cap_add", "cap_drop", "security_opt"}


class InterpolationError(ValueError):
    pass


def interpolate(value, env: dict[str, str]):
    """`value` with every `${...}` replaced, recursively."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        operator, argument = match.group(2), match.group(3) or ""
        current = env.get(name)
        if operator in (":-", "-"):
            unset = current is None or (operator == ":-" and current == "")
            return interpolate(argument, env) if unset else current
        if operator in (":?", "?"):
            if current is None or (operator == ":?" and current == ""):
                raise InterpolationError(f"{name}: {argument or 'required'}")
            return current
        return current or ""

    return _VARIABLE.sub(replace, value)


def variables_used(text: str) -> set[str]:
    """Names interpolated anywhere in a compose file's text."""
    return {m.group(1) or m.group(4) for m in _VARIABLE.finditer(text) if m.group(0) != "$$"}


def load(path: Path, env: dict[str, str]) -> dict:
    document = yaml.safe_load(path.read_text()) or {}
    # Extension fields (x-...) exist for anchors; compose ignores them once merged.
    return interpolate({k: v for k, v in document.items() if not k.startswith("x-")}, env)


def _mount_target(entry) -> str:
    if isinstance(entry, dict):
        return entry.get("target") or entry.get("source") or json.dumps(entry, sort_keys=True)
    parts = str(entry).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _secret_name(entry) -> str:
    return entry["source"] if isinstance(entry, dict) else str(entry)


def _merge_service(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if key not in merged:
            merged[key] = copy.deepcopy(value)
        elif key in _UNION:
            merged[key] = merged[key] + [v for v in value if v not in merged[key]]
        elif key in ("volumes", "secrets", "configs"):
            ident = _mount_target if key == "volumes" else _secret_name
            by_key = {ident(v): v for v in merged[key]}
            by_key.update({ident(v): v for v in value})
            merged[key] = list(by_key.values())
        elif key in ("environment", "labels") and isinstance(value, list):
            raise ValueError(f"{key} as a list is not supported by this reader; use a mapping")
        elif isinstance(value, dict) and isinstance(merged[key], dict):
            merged[key] = _merge_mapping(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _merge_mapping(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge_mapping(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def merge(documents: list[dict]) -> dict:
    result: dict = {}
    for document in documents:
        for key, value in document.items():
            if key == "services":
                services = result.setdefault("services", {})
                for name, service in value.items():
                    services[name] = _merge_service(services.get(name, {}), service)
            elif isinstance(value, dict) and isinstance(result.get(key), dict):
                result[key] = _merge_mapping(result[key], value)
            else:
                result[key] = copy.deepcopy(value)
    return result


def load_merged(paths: list[Path], env: dict[str, str] | None = None) -> dict:
    env = dict(os.environ) if env is None else env
    return merge([load(p, env) for p in paths])


if __name__ == "__main__":
    out, *files = sys.argv[1:]
    Path(out).write_text(json.dumps(load_merged([Path(f) for f in files]), indent=2))
