"""Loyalty points and the gift shop."""
