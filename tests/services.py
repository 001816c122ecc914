"""Real services for tests: SeaweedFS S3 comes from the code ``mediamesh dev-stack`` runs."""

from mediamesh.orchestrator.services.seaweed import S3Endpoint, ServiceError, Webhook, seaweed_s3

__all__ = ["S3Endpoint", "ServiceError", "Webhook", "seaweed_s3"]
