"""Benchmark: what a big config makes of the synthesized template and the requests it causes,
each as a ratio to the CloudFormation, Lambda or Step Functions limit it meets.

The config is ``config/example.toml`` with N account overrides (each account its own BILLING
contact: a team's cost owner, the most common override), synthesized as ``cdk synth`` does.
For each N it prints, for the management account's stack:

- the template as ``cdk deploy`` uploads it (the cloud assembly's file) against CloudFormation's
  1 MB from S3 (and the 51,200 bytes of an inline ``--template-body``, which ``cdk deploy`` avoids
  by uploading anything larger to the bootstrap bucket);
- each custom resource's properties, and the largest request the Provider framework carries for
  it: an Update's event, whose ``ResourceProperties`` and ``OldResourceProperties`` are both the
  full properties. CloudFormation invokes the framework asynchronously (1 MB), the framework
  invokes the on-event handler synchronously (6 MB), and its waiter state machine starts with the
  event as its input (Step Functions' 256 KB per state), which then invokes is-complete with it;
- the spec object the properties name, when the spec is kept out of the template (its size is
  S3's concern, not a limit: the handler reads it).

    .venv/bin/python benchmarks/config_size.py                    # 2,000, 6,000 and 10,000 overrides
    .venv/bin/python benchmarks/config_size.py --inline           # every property in the template, as before
    .venv/bin/python benchmarks/config_size.py --overrides 0 300 20000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "runtime"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from stacks import silence_jsii_node_notices  # noqa: E402

silence_jsii_node_notices()

from org_bootstrap.handlers.resource import PROPERTIES_OBJECT_EXTENSION  # noqa: E402
from stacks.limits import (  # noqa: E402
    LAMBDA_ASYNC_PAYLOAD,
    LAMBDA_SYNC_PAYLOAD,
    STATE_PAYLOAD,
    TEMPLATE_BODY_INLINE,
    TEMPLATE_BODY_S3,
    provider_update_event_bytes,
)

EXAMPLE = ROOT / "config" / "example.toml"
FIRST_OVERRIDE_ACCOUNT = 600_000_000_000  # account IDs 600000000000, 600000000001, ...


def override_accounts(count: int) -> list[str]:
    return [f"{FIRST_OVERRIDE_ACCOUNT + index:012d}" for index in range(count)]


def overrides_config(count: int, accounts: list[str] | None = None) -> dict[str, Any]:
    """The example config (without automation or pipeline) with ``count`` account overrides, each
    giving one account its own BILLING contact; ``accounts``: the accounts to name (default
    :func:`override_accounts`)."""
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    data.pop("automation", None)
    data.pop("pipeline", None)
    named = accounts if accounts is not None else override_accounts(count)
    data["alternate_contacts"]["overrides"] = [
        {
            "account": account,
            "contacts": {
                "BILLING": {
                    "Name": f"Cost owner {index}",
                    "Title": "Cloud cost owner",
                    "EmailAddress": f"cost-owner-{index}@example.com",
                    "PhoneNumber": f"+1 206 555 {index % 10_000:04d}",
                }
            },
        }
        for index, account in enumerate(named[:count])
    ]
    return data


@dataclass(frozen=True)
class Measured:
    overrides: int
    template_bytes: int
    largest_properties: tuple[str, int]  # resource type, bytes of its properties in the template
    largest_event_bytes: int  # the Provider framework's Update event for that resource
    spec_object_bytes: int  # the spec kept out of the template (0 when inline)
    synth_seconds: float


def measure(count: int) -> Measured:
    from aws_cdk import App

    from stacks.app_builder import build_app, feature_flags
    from stacks.config import BootstrapConfig

    config = BootstrapConfig.from_mapping(overrides_config(count), f"<example with {count} overrides>")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as outdir:
        app, stack = build_app(config, App(context=feature_flags(), outdir=outdir))
        assembly = app.synth()
        artifact = assembly.get_stack_by_name(stack.stack_name)
        template_file = Path(assembly.directory) / artifact.template_file
        template_bytes = template_file.stat().st_size
        template = json.loads(template_file.read_text(encoding="utf-8"))
        spec_objects = [
            path.stat().st_size
            for path in Path(assembly.directory).glob(f"asset.*{PROPERTIES_OBJECT_EXTENSION}")
            if path.is_file()
        ]
    seconds = time.monotonic() - started
    custom = {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if str(resource["Type"]).startswith("Custom::")
    }
    sizes = {
        logical_id: len(json.dumps(resource.get("Properties", {}), separators=(",", ":")))
        for logical_id, resource in custom.items()
    }
    largest = max(sizes, key=lambda logical_id: sizes[logical_id])
    return Measured(
        count,
        template_bytes,
        (str(custom[largest]["Type"]), sizes[largest]),
        provider_update_event_bytes(custom[largest].get("Properties", {})),
        max(spec_objects, default=0),
        seconds,
    )


def report(measured: Measured) -> list[str]:
    resource_type, properties = measured.largest_properties
    event = measured.largest_event_bytes
    lines = [
        f"{measured.overrides:,} account overrides (synth {measured.synth_seconds:.0f} s)",
        f"  template                     {measured.template_bytes:>11,} B  "
        f"{measured.template_bytes / TEMPLATE_BODY_S3:6.3f} x 1 MB (S3)   "
        f"{measured.template_bytes / TEMPLATE_BODY_INLINE:7.2f} x 51,200 B (inline)",
        f"  largest properties ({resource_type})",
        f"                               {properties:>11,} B",
        f"  its Update event             {event:>11,} B  "
        f"{event / STATE_PAYLOAD:6.3f} x 256 KB (Step Functions state)   "
        f"{event / LAMBDA_ASYNC_PAYLOAD:6.3f} x 1 MB (Lambda async)   "
        f"{event / LAMBDA_SYNC_PAYLOAD:6.3f} x 6 MB (Lambda sync)",
    ]
    if measured.spec_object_bytes:
        lines.append(f"  spec object (bootstrap bucket) {measured.spec_object_bytes:>9,} B  (read by the handler)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overrides", type=int, nargs="+", default=[2_000, 6_000, 10_000])
    parser.add_argument(
        "--inline",
        action="store_true",
        help="keep every property in the template, as the app did before (to see the limits it met)",
    )
    args = parser.parse_args(argv)
    if args.inline:
        import constructs.org_provider as org_provider

        org_provider.INLINE_PROPERTIES_LIMIT = sys.maxsize
    worst = 0.0
    for count in args.overrides:
        measured = measure(count)
        print("\n".join(report(measured)), flush=True)
        worst = max(
            worst,
            measured.template_bytes / TEMPLATE_BODY_S3,
            measured.largest_event_bytes / STATE_PAYLOAD,
        )
    print(f"worst ratio to a limit: {worst:.3f} ({'within' if worst <= 1 else 'OVER'} every limit)")
    return 0 if worst <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
