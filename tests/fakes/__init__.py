"""Local stand-ins for the hosted providers (real HTTP servers on 127.0.0.1) used by the hosted tests."""
