"""The only Kubernetes I/O of the operator: server-side apply, status patches, events."""
