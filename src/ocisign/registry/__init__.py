"""OCI distribution registries: HTTP transport and endpoints, authentication, credentials, the copy engine."""
