"""The MQTT integration: the only package that imports aiomqtt."""
