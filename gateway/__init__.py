"""Campus IoT equipment and smart-venue gateway."""

__version__ = "0.1.0"
