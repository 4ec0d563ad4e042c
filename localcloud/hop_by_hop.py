"""The HTTP headers that never cross a proxy, for the local ALB and API Gateway listeners."""

# RFC 9110 section 7.6.1: connection-specific headers; each hop sets its own.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
