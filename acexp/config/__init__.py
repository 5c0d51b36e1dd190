"""Configuration: the schema, its validation, command-line overrides and resume.

Importing the package registers the schema in Hydra's ConfigStore (conf/config.yaml composes
onto it), before anything composes a config.
"""

import acexp.config.schema  # noqa: F401
