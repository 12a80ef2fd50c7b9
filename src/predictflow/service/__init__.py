"""The read side, shared by the CLI and the console: what the pipeline wrote, and replay."""
