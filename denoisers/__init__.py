"""Denoisers: networks and classical proxes, with offline weight loading (filled by later issues)."""
