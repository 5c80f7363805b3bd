"""The JSON API under /v1, one router per resource."""
