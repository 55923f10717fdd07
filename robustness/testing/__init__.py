"""Test helpers others can import: tiny offline checkpoints and a loopback fake API server."""
