"""CDK stacks of the organization bootstrap app."""

from __future__ import annotations

import os

# jsii's Node.js process prints an 11-line banner on every start (so on every `cdk` call) when the
# Node release is past jsii's end of life or nearing it. Node 20 is past it and is the release
# this repository's CI runs; other end-of-life releases still get the banner.
# https://github.com/aws/jsii/blob/main/packages/%40jsii/check-node/src/index.ts
JSII_NODE_NOTICES_SILENCED = {
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
}


def silence_jsii_node_notices() -> None:
    """Call before the first ``import aws_cdk``: jsii starts its Node process when the library loads."""
    for name, value in JSII_NODE_NOTICES_SILENCED.items():
        os.environ.setdefault(name, value)
