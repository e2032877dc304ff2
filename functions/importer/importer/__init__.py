"""s3-to-wistia: imports media objects created in S3 into Wistia by presigned URL."""
