"""Application Load Balancers for the course (placeholder)."""
