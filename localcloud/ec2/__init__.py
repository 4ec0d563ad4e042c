"""EC2 networking rules the local cloud applies itself (moto keeps the VPC records)."""

from .reachability import FUNCTION_TOKEN_PREFIX, VpcRoutes, function_session_token

__all__ = ["FUNCTION_TOKEN_PREFIX", "VpcRoutes", "function_session_token"]
