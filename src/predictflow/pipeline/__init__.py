"""The pipeline: the steps the state machine runs, the storage they use, their settings."""
