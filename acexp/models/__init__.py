"""Actor-critic networks built from Gymnasium spaces."""

from acexp.models.actor_critic import ActorCritic, SharedActorCritic, UnsharedActorCritic

__all__ = ["ActorCritic", "SharedActorCritic", "UnsharedActorCritic"]
