"""s3-to-wistia: the webhook receiver, Wistia's signed media events behind a Function URL."""
