"""Lambda runtime for the organization bootstrap custom resources.

Everything in this package runs inside AWS Lambda and imports only the standard library and
boto3. The CDK app imports :mod:`org_bootstrap.validation` too, so that a rule is written once
and checked both at ``cdk synth`` and in the handler.
"""
