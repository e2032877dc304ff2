"""One adapter per outside system. Each turns its failures into PermanentError or
RetryableError, so the import logic never sees a botocore or urllib3 exception."""
