"""Routing: one interface, pure policies, a registry of names."""
