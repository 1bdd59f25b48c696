"""Kiosk integration (DESIGN §7): config, actuators, signed decision tokens, local API, audit log, service.

Nothing here imports torch; paho-mqtt, cryptography and Jetson.GPIO are imported only by the
actuator or key that needs them.
"""
