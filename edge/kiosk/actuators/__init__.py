"""Door actuators behind one interface; pick one with :func:`open_actuator` from the config ``type``."""

from edge.kiosk.actuators.actuator import (
    ACTUATOR_KINDS,
    Actuator,
    ActuatorError,
    ActuatorHealth,
    ActuatorSettings,
    OutcomeUnknownError,
    open_actuator,
    read_actuator_settings,
)

__all__ = ["ACTUATOR_KINDS", "Actuator", "ActuatorError", "ActuatorHealth", "ActuatorSettings",
           "OutcomeUnknownError", "open_actuator", "read_actuator_settings"]
