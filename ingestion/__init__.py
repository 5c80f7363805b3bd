"""Sources, ingestion jobs, readers and chunkers, and the task queue worker."""
