"""The edge: the local cloud's single HTTP endpoint, dispatching each AWS request.

Every request is looked at once: the SigV4 credential scope names the service and region;
only when a course provider exists for that service is the operation identified (by the
protocol's rules) and, if the provider defines it, served there. Everything else, including
every request for services without a provider, goes to moto unchanged. Paths under
`/_localcloud/` are the daemon's own control API (health, status, reset, shutdown).

Before any of that, the edge refuses what AWS would refuse at its front door, with AWS's
codes (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/CommonErrors.html):
- a request from a web page or a foreign host name (an `Origin` or `Sec-Fetch-Site` of
  another site, a `Host` that is not a loopback name with the daemon's port, as after DNS
  rebinding): 403 AccessDenied;
- no `Authorization` header and no presigned `X-Amz-Credential`: 403
  MissingAuthenticationToken; an `Authorization` header without a SigV4 credential scope:
  400 IncompleteSignature; a scope naming a service or region botocore does not know: 403
  SignatureDoesNotMatch ("Credential should be scoped to a valid region");
- a body that is not framed correctly (a Content-Length that is not a number, a bad chunk
  size, both Content-Length and chunked, a body shorter than declared): 400 BadRequest or
  IncompleteBody; a body not received within BODY_DEADLINE_S: 400 RequestTimeout;
- a body over AWS's request size limit: 413. Lambda Invoke takes 6 MB
  (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html), other Lambda
  calls about 70 MB (a 50 MB zip, base64 in JSON); every other request up to
  LOCALCLOUD_MAX_BODY_BYTES (default 32 MiB), where AWS allows more for some services
  (S3 PutObject takes 5 GB). Bodies are read in pieces up to the limit, never trusting a
  declared size, so one request never holds more memory than its limit.
"""

from .app import CONTROL_PREFIX, ControlGuard, ControlHandler, Edge
from .errors import EdgeError

__all__ = ["CONTROL_PREFIX", "ControlGuard", "ControlHandler", "Edge", "EdgeError"]
