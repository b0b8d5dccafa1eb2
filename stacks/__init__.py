"""CDK stacks of the organization bootstrap app."""
