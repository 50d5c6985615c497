"""The ``jarmor`` command line."""
