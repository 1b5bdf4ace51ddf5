"""The link: the one owner of Wi-Fi and broker recovery (the ``_keep_connected`` of ``mqtt_as``).

``service`` is called from the main loop on every pass and does one bounded step: join Wi-Fi (never waiting
for it), connect to the broker with the last will on the status topic, announce ``online`` (retained), subscribe,
then keep the connection alive and send what waits in the outbox, each publish confirmed by the broker before the
record leaves the outbox. Any failure closes the connection and schedules the next attempt after a jittered,
capped exponential backoff. Every blocking call is bounded by the transport's socket timeout, and the watchdog is
fed between them, so no step outlasts the watchdog.
"""

from campusnode import payloads
from campusnode.backoff import Backoff
from campusnode.clock import Clock
from campusnode.outbox import Outbox
from campusnode.transport import MessageHandler, Transport, TransportError, Wifi


class LinkListener(MessageHandler):
    """What the link asks of the node: its status payloads, and word of a new connection."""

    def online_status(self) -> bytes:
        raise NotImplementedError

    def offline_status(self) -> bytes:
        raise NotImplementedError

    def connected(self, now_ms: int) -> None:
        raise NotImplementedError


class Watchdog:
    """``machine.WDT`` on the board; does nothing elsewhere."""

    def feed(self) -> None:
        pass


DOWN = "down"
JOINING = "joining"
UP = "up"


class Link:
    def __init__(
        self,
        transport: Transport,
        wifi: Wifi,
        clock: Clock,
        backoff: Backoff,
        listener: LinkListener,
        status_topic: str,
        subscriptions: list[str],
        keepalive_s: int,
        wifi_timeout_s: int,
        watchdog: Watchdog | None = None,
        burst: int = 10,
    ) -> None:
        self.transport = transport
        self.wifi = wifi
        self.clock = clock
        self.backoff = backoff
        self.listener = listener
        self.status_topic = status_topic
        self.subscriptions = subscriptions
        self.keepalive_ms = keepalive_s * 1000
        self.wifi_timeout_ms = wifi_timeout_s * 1000
        self.watchdog = watchdog or Watchdog()
        self.burst = burst
        self.state = DOWN
        self.next_attempt: int | None = None
        self._joining_since = 0
        self._last_io = 0
        self.connects = 0
        self.failures = 0
        self.sent = 0
        self.last_error = ""

    @property
    def up(self) -> bool:
        return self.state == UP

    def service(self, now_ms: int, outbox: Outbox) -> int:
        """One bounded step; returns how many outbox records the broker confirmed in it."""
        if self.state == UP:
            return self._keep(now_ms, outbox)
        if self.next_attempt is not None and self.clock.diff(now_ms, self.next_attempt) < 0:
            return 0
        if not self.wifi.connected():
            if self.state != JOINING:
                self.state = JOINING
                self._joining_since = now_ms
                self.wifi.begin()
            elif self.clock.diff(now_ms, self._joining_since) > self.wifi_timeout_ms:
                self.wifi.reset()
                self._fail(now_ms, "Wi-Fi did not connect within " + str(self.wifi_timeout_ms // 1000) + " s")
            return 0
        self._connect(now_ms)
        return 0

    def _connect(self, now_ms: int) -> None:
        try:
            self.transport.connect(self.status_topic, self.listener.offline_status(), self.listener)
            self.watchdog.feed()
            self.transport.publish(self.status_topic, self.listener.online_status(), True)
            self.watchdog.feed()
            for topic in self.subscriptions:
                self.transport.subscribe(topic)
                self.watchdog.feed()
        except TransportError as exc:
            self.transport.close()
            self._fail(now_ms, "broker: " + str(exc))
            return
        self.state = UP
        self.connects += 1
        self.backoff.reset()
        self.next_attempt = None
        self._last_io = now_ms
        self.listener.connected(now_ms)

    def _keep(self, now_ms: int, outbox: Outbox) -> int:
        sent = 0
        try:
            if not self.wifi.connected():
                raise TransportError("Wi-Fi lost")
            self.transport.poll()
            self.watchdog.feed()  # a poll may wait a socket timeout, and a publish up to two more
            while sent < self.burst:
                record = outbox.peek()
                if record is None:
                    break
                try:
                    payload = record.encode()
                except payloads.PayloadError:
                    outbox.drop_invalid()
                    continue
                self.transport.publish(record.topic, payload)
                self.watchdog.feed()
                # a message handled while waiting for the PUBACK may have queued a record into a full outbox,
                # pushing this one out: then it is gone already, and the next one has not been sent
                if outbox.peek() is record:
                    outbox.pop()
                sent += 1
                self._last_io = now_ms
            if self.clock.diff(now_ms, self._last_io) >= self.keepalive_ms // 2:
                self.transport.ping()
                self._last_io = now_ms
        except TransportError as exc:
            self.lost(now_ms, str(exc))
        self.sent += sent
        return sent

    def lost(self, now_ms: int, reason: str) -> None:
        """Drop the connection (the broker publishes the last will) and reconnect after a backoff."""
        self.transport.close()
        self._fail(now_ms, reason)

    def _fail(self, now_ms: int, reason: str) -> None:
        self.state = DOWN
        self.failures += 1
        self.last_error = reason
        self.next_attempt = now_ms + self.backoff.next_ms()

    def shutdown(self) -> None:
        """Clean goodbye: ``offline`` (retained) in place of the will, then DISCONNECT."""
        if self.state != UP:
            return
        try:
            self.transport.publish(self.status_topic, self.listener.offline_status(), True)
            self.transport.disconnect()
        except TransportError:
            self.transport.close()
        self.state = DOWN
