"""Hardware drivers: thin classes over ``machine`` implementing the apps' interfaces."""

import os

import machine
import micropython
import time

from campusnode.pins import ByteSource, EdgeSource, Output
from campusnode.transport import Store

micropython.alloc_emergency_exception_buf(100)


class PinOutput(Output):
    def __init__(self, pin: int, active_high: bool = True) -> None:
        self._active_high = active_high
        self._pin = machine.Pin(pin, machine.Pin.OUT, value=0 if active_high else 1)

    def set(self, on: bool) -> None:
        self._pin.value(1 if on == self._active_high else 0)


class EdgeCapture(EdgeSource):
    """Every level change of an input pin, stamped with ``ticks_ms`` in the interrupt, in a preallocated ring."""

    def __init__(self, pin: int, size: int = 64, pull_up: bool = True) -> None:
        if pull_up:
            self._pin = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)
        else:
            self._pin = machine.Pin(pin, machine.Pin.IN)
        self._levels = bytearray(size)
        self._times = [0] * size
        self._size = size
        self._head = 0
        self._tail = 0
        self._lost = 0
        self._pin.irq(self._irq, machine.Pin.IRQ_RISING | machine.Pin.IRQ_FALLING)

    def _irq(self, pin: machine.Pin) -> None:
        nxt = (self._head + 1) % self._size
        if nxt == self._tail:
            self._lost += 1
            return
        self._levels[self._head] = pin.value()
        self._times[self._head] = time.ticks_ms()
        self._head = nxt

    def take(self) -> list[tuple[int, int]]:
        out = []
        state = machine.disable_irq()
        try:
            while self._tail != self._head:
                out.append((self._levels[self._tail], self._times[self._tail]))
                self._tail = (self._tail + 1) % self._size
        finally:
            machine.enable_irq(state)
        return out

    def lost(self) -> int:
        return self._lost


class UartSource(ByteSource):
    def __init__(self, uart_id: int, tx: int, rx: int, baudrate: int = 9600) -> None:
        self._uart = machine.UART(uart_id, baudrate=baudrate, tx=tx, rx=rx, rxbuf=1024, timeout=0)

    def read(self) -> bytes:
        if not self._uart.any():
            return b""
        return self._uart.read() or b""

    @property
    def uart(self) -> machine.UART:
        return self._uart


def i2c(bus_id: int, sda: int, scl: int) -> machine.I2C:
    return machine.I2C(bus_id, sda=machine.Pin(sda), scl=machine.Pin(scl), freq=100000)


class FlashStore(Store):
    """Files in a flash directory, replaced atomically (write a temporary file, then rename)."""

    def __init__(self, directory: str = "/data") -> None:
        self.directory = directory
        try:
            os.mkdir(directory)
        except OSError:
            pass  # exists

    def _path(self, name: str) -> str:
        return self.directory + "/" + name

    def read(self, name: str) -> bytes | None:
        try:
            with open(self._path(name), "rb") as handle:
                return handle.read()
        except OSError:
            return None

    def write(self, name: str, data: bytes) -> None:
        temporary = self._path(name + ".tmp")
        with open(temporary, "wb") as handle:
            handle.write(data)
        os.rename(temporary, self._path(name))

    def remove(self, name: str) -> None:
        try:
            os.remove(self._path(name))
        except OSError:
            pass


class RtcStore(Store):
    """One blob in the RTC memory (survives resets and the watchdog, not a power cut); one name only."""

    def __init__(self) -> None:
        self._rtc = machine.RTC()

    def read(self, name: str) -> bytes | None:
        data = self._rtc.memory()
        return bytes(data) if data else None

    def write(self, name: str, data: bytes) -> None:
        self._rtc.memory(data)

    def remove(self, name: str) -> None:
        self._rtc.memory(b"")
