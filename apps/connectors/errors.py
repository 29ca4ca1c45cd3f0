class DeliveryConflict(Exception):
    """The delivery or connector is in a state that forbids the action (answered 409)."""
