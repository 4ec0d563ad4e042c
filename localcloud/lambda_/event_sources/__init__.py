"""Event source mappings: DynamoDB streams polled and fed to functions as AWS does.

SQS queues and Kinesis streams would be further pollers next to `poller.py`.
"""

from .mappings import EventSourceMappings

__all__ = ["EventSourceMappings"]
