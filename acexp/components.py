"""The one place that imports every registered component, so the registries are complete."""

import acexp.models.actor_critic  # noqa: F401  (registers: shared, unshared)
import acexp.trainers.a2c  # noqa: F401  (registers: a2c)
import acexp.trainers.episodic  # noqa: F401  (registers: episodic)
import acexp.trainers.ppo  # noqa: F401  (registers: ppo)
