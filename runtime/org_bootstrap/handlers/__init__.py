"""The Lambda entry points: the custom resources' handlers, the drift check and the account events."""
