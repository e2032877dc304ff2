"""s3-to-wistia: the shared package behind every entry point (functions and the CLI)."""
