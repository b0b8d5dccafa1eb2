"""The stack's file assets, as ``cdk deploy`` publishes them to the CDK bootstrap bucket before it
deploys: here to the simulated account's bucket, so that a handler reads them as it would in AWS.

A custom resource whose properties are too large for the template names an object of that bucket
(``org_bootstrap.handlers.resource.PROPERTIES_OBJECT``); the template itself is a file asset too.
Directory assets (the Lambda code, the spec layer) are zipped by the CDK CLI and not published
here: the local deploy runs the runtime package in place and reads layers from the cloud assembly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from org_bootstrap.aws.partitions import partition_of
from org_bootstrap.handlers.resource import ObjectReader


@dataclass(frozen=True)
class FileAsset:
    source: Path
    bucket: str
    key: str


def file_assets(assembly_directory: str | Path, stack_artifact: str, *, account: str, region: str) -> list[FileAsset]:
    """The file assets of a stack of the cloud assembly (its ``<stack>.assets.json`` manifest)."""
    manifest = Path(assembly_directory) / f"{stack_artifact}.assets.json"
    if not manifest.is_file():
        return []
    found = []
    for asset in json.loads(manifest.read_text(encoding="utf-8")).get("files", {}).values():
        source = asset.get("source", {})
        if source.get("packaging", "file") != "file" or "path" not in source:
            continue
        for destination in asset.get("destinations", {}).values():
            bucket = _placeholders(str(destination["bucketName"]), account=account, region=region)
            found.append(FileAsset(Path(assembly_directory) / source["path"], bucket, str(destination["objectKey"])))
    return found


def publish(assets: list[FileAsset], s3: Any, *, region: str) -> int:
    """Upload each asset the bucket does not have yet (the bucket made as ``cdk bootstrap`` would);
    the number uploaded."""
    uploaded = 0
    for asset in assets:
        try:
            s3.head_bucket(Bucket=asset.bucket)
        except ClientError:
            location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            s3.create_bucket(Bucket=asset.bucket, **location)
        try:
            s3.head_object(Bucket=asset.bucket, Key=asset.key)
            continue  # content-addressed: the same key is the same content
        except ClientError:
            pass
        s3.put_object(Bucket=asset.bucket, Key=asset.key, Body=asset.source.read_bytes())
        uploaded += 1
    return uploaded


def assembly_reader(assembly_directory: str | Path, fallback: ObjectReader | None = None) -> ObjectReader:
    """Reads an object from the cloud assembly, where ``cdk synth`` staged it before any upload
    (``asset.<key>``), else with ``fallback`` (a deployed stack's earlier object, from the bucket)."""

    def read(bucket: str, key: str) -> bytes:
        staged = Path(assembly_directory) / f"asset.{key}"
        if assembly_directory and staged.is_file():
            return staged.read_bytes()
        if fallback is None:
            raise FileNotFoundError(f"s3://{bucket}/{key} is neither in the cloud assembly nor published")
        return fallback(bucket, key)

    return read


def _placeholders(text: str, *, account: str, region: str) -> str:
    partition = partition_of(region)
    return (
        text.replace("${AWS::AccountId}", account)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", partition)
    )
