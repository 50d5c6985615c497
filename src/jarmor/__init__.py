"""jarmor: verifiable OAuth 2.0 authorization flows (JAR, JARM, PAR, PKCE, RFC 9207) with risk tiers."""

__version__ = "0.1.0"
