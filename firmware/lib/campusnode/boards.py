"""Pin maps per board: which GPIO each app's wiring uses. A node's config names its board and may override pins.

``None`` means the board has no such pin by default (the config must give one if the app needs it).
UART numbers are the ESP32's hardware UARTs; UART0 carries the REPL, so sensors use 1 or 2.
"""

PINMAPS: dict[str, dict[str, int | None]] = {
    # ESP32-DevKitC (ESP32-WROOM-32): avoids the strapping pins 0, 2, 5, 12, 15 and the flash pins 6-11.
    "esp32-devkitc": {
        "i2c_id": 0,
        "i2c_sda": 21,
        "i2c_scl": 22,
        "uart_id": 2,
        "uart_tx": 17,
        "uart_rx": 16,
        "pulse": 27,
        "relay": 26,
        "passage": 25,
        "led": 2,
    },
    # ESP32-C3-DevKitM-1: avoids the strapping pins 2, 8, 9 and USB (18, 19) and UART0 (20, 21).
    "esp32-c3": {
        "i2c_id": 0,
        "i2c_sda": 4,
        "i2c_scl": 5,
        "uart_id": 1,
        "uart_tx": 6,
        "uart_rx": 7,
        "pulse": 3,
        "relay": 10,
        "passage": 1,
        "led": None,
    },
}

PIN_NAMES = ("i2c_id", "i2c_sda", "i2c_scl", "uart_id", "uart_tx", "uart_rx", "pulse", "relay", "passage", "led")


def pinmap(board: str, overrides: dict | None = None) -> dict:
    """The pins of ``board`` with ``overrides`` applied; KeyError names an unknown board or pin."""
    if board not in PINMAPS:
        raise KeyError("unknown board " + repr(board) + " (known: " + ", ".join(sorted(PINMAPS)) + ")")
    pins = dict(PINMAPS[board])
    for name, value in (overrides or {}).items():
        if name not in PIN_NAMES:
            raise KeyError("unknown pin " + repr(name) + " (known: " + ", ".join(PIN_NAMES) + ")")
        pins[name] = value
    return pins
