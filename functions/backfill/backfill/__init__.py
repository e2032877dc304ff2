"""s3-to-wistia's backfill: imports the objects an S3 Batch Operations job names, through the
import function's own path (same claim, records and dead letters)."""
