"""The application: HTTP API, web pages, CLI, auth, and the use cases that span packages."""
