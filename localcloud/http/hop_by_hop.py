"""The HTTP headers that never cross a proxy: each hop sets its own."""

# RFC 9110 section 7.6.1: connection-specific headers.
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
