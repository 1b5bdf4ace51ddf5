"""campusnode on CPython: the same node logic as on the board, over paho-mqtt and simulated hardware.

Not copied to the board. ``python -m campusnode_host CONFIG.json`` (with ``firmware/lib`` and ``firmware/host`` on
``PYTHONPATH``) runs one node as a simulator against a real broker; the tests drive nodes through the same parts.
"""
