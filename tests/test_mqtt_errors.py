"""The bridge turns nested TaskGroup failures back into the MqttError it reconnects on."""

from __future__ import annotations

import aiomqtt

from integrations.mqtt.client import _first_leaf


def test_nested_groups_yield_the_leaf_error() -> None:
    leaf = aiomqtt.MqttCodeError(4, "The client is not currently connected.")
    nested = ExceptionGroup("outer", [ExceptionGroup("sender", [leaf]), ValueError("x")])
    assert _first_leaf(nested) is leaf
    assert isinstance(_first_leaf(nested), aiomqtt.MqttError)
