"""A simulated AWS Organization (moto, made as strict as AWS) for tests and the local deploy."""
