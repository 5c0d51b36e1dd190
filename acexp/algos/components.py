"""The one place that imports every registered component, so the registries are complete."""

import acexp.algos.a2c  # noqa: F401  (registers: a2c)
import acexp.algos.episodic  # noqa: F401  (registers: episodic)
import acexp.algos.ppo  # noqa: F401  (registers: ppo)
import acexp.models.actor_critic  # noqa: F401  (registers: shared, unshared)
