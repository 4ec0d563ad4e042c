"""API Gateway HTTP APIs for the course (placeholder)."""
