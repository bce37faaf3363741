"""Backends: implementations of a Plan behind the one Runtime API (see tianrt.runtime)."""
