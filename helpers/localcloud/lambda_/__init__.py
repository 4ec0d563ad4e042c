"""The local Lambda service: real handler code in warm `awslambdaric` worker processes."""

from .provider import LambdaProvider

__all__ = ["LambdaProvider"]
