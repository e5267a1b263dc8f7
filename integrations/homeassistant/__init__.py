"""Home Assistant integration: MQTT discovery payloads and the state publisher."""
