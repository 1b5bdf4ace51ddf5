"""campusnode: MicroPython 1.27 firmware for the campus's ESP32 sensor nodes, fitness-path counters and gate readers.

Layout (copied to the board's ``/lib/campusnode``):

- pure logic, no hardware, runs under CPython and MicroPython alike: ``topics``, ``payloads``, ``outbox``,
  ``clock``, ``backoff``, ``debounce``, ``totals``, ``gatecmd``, ``config``, ``boards``, ``sensors``, ``scanner``,
  ``transport`` (the interfaces), ``link`` (one owner of Wi-Fi and broker recovery), ``node`` and ``apps/``;
- ``board/``: the thin shell over ``machine``, ``network``, ``ntptime`` and ``umqtt`` (board only).

The CPython side (paho-mqtt transport, fake buses, the simulator entry point) is ``firmware/host/``.
"""

FW_VERSION = "campusnode-0.1.0"
