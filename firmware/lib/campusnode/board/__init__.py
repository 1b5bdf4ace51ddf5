"""The board shell: ``machine``, ``network``, ``ntptime`` and ``umqtt`` behind the interfaces of the pure modules.

Only this package (and ``/main.py``) imports MicroPython's hardware modules; nothing here has logic worth a test
that the pure modules do not already cover.
"""
