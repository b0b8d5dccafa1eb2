"""The AWS side: boto3 clients with one retry policy, the organization's tree, partitions' Regions."""
