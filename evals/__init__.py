"""Retrieval and answer quality: golden sets, metrics and the eval runner."""
