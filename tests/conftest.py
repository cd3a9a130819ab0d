"""Shared fixtures. `pytester` drives pytest in a subprocess to test the plugin as users run it."""

pytest_plugins = ["pytester"]
