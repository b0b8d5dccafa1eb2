"""A rename never replaces a deployed resource: every stack's logical IDs and resource types stay as recorded.

CloudFormation replaces a resource whose logical ID or type changes, and a replaced custom resource
gets a Delete, which applies its removal mode to the organization. Each config of ``tests/deployed/``
(and the example config) is synthesized as ``cdk synth`` would, and every stack's resources are
compared with ``tests/deployed/logical_ids.json``, recorded once from the deployed shape.
``PYTHONPATH=.:runtime .venv/bin/python -m tests.test_deployed_logical_ids`` records it again: for a
new resource, or a change that means to move one (with its migration in docs/operations.md).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stacks import silence_jsii_node_notices

silence_jsii_node_notices()

from stacks.app_builder import build  # noqa: E402
from stacks.config import load_config  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEPLOYED = ROOT / "tests" / "deployed"
RECORD = DEPLOYED / "logical_ids.json"
CONFIGS = {
    "example": ROOT / "config" / "example.toml",
    "every-part": ROOT / "tests" / "configs" / "every-part.toml",
    **{path.stem: path for path in sorted(DEPLOYED.glob("*.toml"))},
}


def stack_artifacts(assembly: Any) -> Iterator[Any]:
    yield from assembly.stacks
    for nested in assembly.nested_assemblies:
        yield from stack_artifacts(nested.nested_assembly)


def resources_of(config_file: Path) -> dict[str, dict[str, str]]:
    """Every synthesized stack's resources, logical ID to type, by the stack's artifact ID."""
    assembly = build(load_config(config_file), config_file=config_file).synth()
    return {
        stack.hierarchical_id: {
            logical_id: resource["Type"] for logical_id, resource in sorted(stack.template["Resources"].items())
        }
        for stack in stack_artifacts(assembly)
    }


def record() -> dict[str, dict[str, dict[str, str]]]:
    return {name: resources_of(path) for name, path in CONFIGS.items()}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_resource_keeps_its_logical_id_and_type(name: str) -> None:
    recorded = json.loads(RECORD.read_text(encoding="utf-8"))
    assert name in recorded, f"{name}: not recorded; record it (see the module docstring)"
    synthesized = resources_of(CONFIGS[name])
    for stack, resources in recorded[name].items():
        assert stack in synthesized, f"{name}: stack {stack} is gone"
        now = synthesized[stack]
        replaced = {
            logical_id: (kind, now.get(logical_id, "<gone>"))
            for logical_id, kind in resources.items()
            if now.get(logical_id) != kind
        }
        assert not replaced, f"{name}/{stack}: these resources would be replaced (was, now): {replaced}"
        added = sorted(set(now) - set(resources))
        assert not added, f"{name}/{stack}: new resources {added}; record them (see the module docstring)"


if __name__ == "__main__":
    RECORD.write_text(json.dumps(record(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    sys.stdout.write(f"recorded {RECORD}\n")
