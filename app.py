#!/usr/bin/env python3
"""CDK entry point: load the config (``-c config=PATH``, default the example) and build the stacks."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# The Lambda runtime package is shared with the app for input validation (one set of rules).
sys.path[:0] = [str(ROOT), str(ROOT / "runtime")]

from stacks import silence_jsii_node_notices  # noqa: E402

silence_jsii_node_notices()  # before aws_cdk, whose import starts jsii's Node process

from stacks.app_builder import build, new_app  # noqa: E402
from stacks.config import DEFAULT_CONFIG, ConfigError, config_path, load_config  # noqa: E402
from stacks.limits import StackLimitError, check_assembly  # noqa: E402


def main() -> None:
    app = new_app()
    path = config_path(app.node.try_get_context("config") or DEFAULT_CONFIG)
    try:
        build(load_config(path), config_file=path, app=app)
    except ConfigError as error:
        sys.exit(str(error))
    try:
        check_assembly(app.synth())  # a template or request a deploy would refuse: refused now
    except StackLimitError as error:
        sys.exit(f"{error}\n(config {path}; see docs/limits.md)")


if __name__ == "__main__":
    main()
