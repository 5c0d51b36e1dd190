"""Configuration: the schema, its validation, command-line overrides and resume."""
